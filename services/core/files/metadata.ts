/** Normalisation of the client-supplied parts of a file's metadata: its name and media type. */

export const MAX_FILE_NAME_LENGTH = 255;
const FALLBACK_NAME = 'file';
/** Longest extension kept intact when a long name is shortened. */
const MAX_KEPT_EXTENSION = 16;

// C0/C1 controls, and the bidi overrides that make `evil‮fdp.exe` display as `evilexe.pdf`.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A display name safe to store and to echo in a Content-Disposition: the last path
 * segment only, no control or bidi-override characters, whitespace collapsed, at most
 * 255 characters (the extension survives shortening). Never empty.
 */
export function sanitiseFileName(raw: string): string {
  const lastSegment = raw.normalize('NFC').split(/[/\\]/).pop() ?? '';
  const cleaned = lastSegment.replace(UNSAFE_CHARACTERS, '').replace(/\s+/g, ' ').trim();
  const name = cleaned === '' || cleaned === '.' || cleaned === '..' ? FALLBACK_NAME : cleaned;
  const characters = Array.from(name);
  if (characters.length <= MAX_FILE_NAME_LENGTH) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 && name.length - dot <= MAX_KEPT_EXTENSION ? name.slice(dot) : '';
  const stem = Array.from(extension ? name.slice(0, dot) : name).slice(0, MAX_FILE_NAME_LENGTH - extension.length);
  return stem.join('').trimEnd() + extension;
}

const TOKEN = "[A-Za-z0-9!#$&^_.+-]{1,127}";
const PARAMETER = `;\\s*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\r\\n]*")`;
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})((?:\\s*${PARAMETER})*)\\s*$`);

/**
 * `type/subtype` with optional parameters (RFC 6838 token characters), type and subtype
 * lower-cased. Loose on purpose: the bytes are stored as given and served back with
 * `nosniff`, so the only aim is a well-formed header value. Undefined when malformed.
 */
export function normaliseContentType(raw: string): string | undefined {
  const match = MEDIA_TYPE.exec(raw.trim());
  if (!match || raw.length > 255) return undefined;
  const [, type = '', subtype = '', parameters = ''] = match;
  return `${type.toLowerCase()}/${subtype.toLowerCase()}${parameters}`;
}
