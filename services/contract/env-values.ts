import { z } from 'zod';

/**
 * How one environment variable's text becomes a value. Each parser refuses what it cannot
 * read with a message saying what is expected, and never repeats the value: it may be a
 * secret, and a log line outlives the mistake.
 *
 * Numbers, flags and choices ignore surrounding whitespace (a value mounted from a file
 * often ends in a newline); free text and URLs are taken as written.
 */

interface WholeNumberRange {
  min: number;
  /** Unset: no upper bound but the largest integer a double holds exactly. */
  max?: number;
  /** What the number counts, for the message: `seconds`, `bytes`. */
  unit?: string;
}

function describeRange({ min, max, unit }: WholeNumberRange): string {
  const what = unit ? `a whole number of ${unit}` : 'a whole number';
  return max === undefined ? `${what}, ${min} or more, in digits only` : `${what} from ${min} to ${max}, in digits only`;
}

/**
 * A whole number written in decimal digits. `Number()` would read `1e3`, `0x10` and
 * `1_000` too, turn a blank into 0 and `30s` into NaN; a duration with a unit is refused,
 * not guessed at.
 */
export function wholeNumber(range: WholeNumberRange) {
  const expected = `must be ${describeRange(range)}`;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  return z.string().transform((raw, context) => {
    const digits = raw.trim();
    const value = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
    if (Number.isSafeInteger(value) && value >= range.min && value <= max) return value;
    context.addIssue({ code: 'custom', message: expected });
    return z.NEVER;
  });
}

/** `true`/`false` or `1`/`0`, in any case. Other words (`yes`, `on`) are refused rather than read one way or the other. */
export const flag = z.string().transform((raw, context) => {
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  context.addIssue({ code: 'custom', message: 'must be true or false (or 1 or 0)' });
  return z.NEVER;
});

/** One of `choices`, exactly as written there. */
export function oneOf<const Choices extends readonly [string, ...string[]]>(choices: Choices) {
  const message = `must be one of ${choices.join(', ')}`;
  return z.string().transform((raw, context): Choices[number] => {
    const value = raw.trim();
    if ((choices as readonly string[]).includes(value)) return value;
    context.addIssue({ code: 'custom', message });
    return z.NEVER;
  });
}

/** Free text that must say something: not blank, no whitespace at either end (a stray space would become part of a name). */
export function label(limits: { max: number }) {
  return z.string().superRefine((value, context) => {
    const fail = (message: string) => context.addIssue({ code: 'custom', message });
    if (value.trim() === '') fail('must not be blank');
    else if (value.trim() !== value) fail('must not begin or end with whitespace');
    else if (value.length > limits.max) fail(`must be at most ${limits.max} characters`);
    else if (/\p{Cc}/u.test(value)) fail('must not contain control characters');
  });
}

const ADDRESS = String.raw`[^\s<>@",;:()\[\]\\]+@[^\s<>@",;:()\[\]\\]+\.[^\s<>@",;:()\[\]\\.]+`;
/** `name@example.com` or `Display Name <name@example.com>`: one mailbox, as a From header takes it. */
const MAILBOX = new RegExp(String.raw`^(?:${ADDRESS}|[^<>\p{Cc}]*[^\s<>\p{Cc}]\s*<${ADDRESS}>)$`, 'u');
export const mailbox = z.string().regex(MAILBOX, 'must be one mail address, such as no-reply@example.com or Platform Kit <no-reply@example.com>');

interface UrlRules {
  /** Schemes accepted, with their colon: `postgres:`. */
  schemes: readonly string[];
  /** A well-formed value, shown in messages. */
  example: string;
  /** Whether a user name and password belong in it (a connection URL) or not (an address others see). */
  credentials: 'allowed' | 'refused';
  /** Why a query string is refused; unset, one is allowed. */
  queryRefusedBecause?: string;
  /** Why credentials are refused, when they are. */
  credentialsRefusedBecause?: string;
  /** The path the URL may have, and what to say when it has another. */
  path?: { pattern: RegExp; message: string };
}

function hasMalformedEscape(text: string): boolean {
  try {
    decodeURIComponent(text);
    return false;
  } catch {
    return true;
  }
}

/**
 * A URL of one of `schemes` that names a host. A connection URL's password must be
 * percent-encoded where it holds `@ : / ? # %`, which the messages say, since that is the
 * usual reason a URL fails to parse.
 */
export function url(rules: UrlRules) {
  const encodingHint = rules.credentials === 'allowed' ? '; percent-encode @ : / ? # % in the user name and password (# as %23)' : '';
  const schemes = rules.schemes.map((scheme) => `${scheme}//`).join(' or ');
  return z.string().superRefine((value, context) => {
    const fail = (message: string) => context.addIssue({ code: 'custom', message });
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      fail(`must be a URL such as ${rules.example}${encodingHint}`);
      return;
    }
    if (!rules.schemes.includes(parsed.protocol)) return fail(`must start with ${schemes}, such as ${rules.example}`);
    if (parsed.hostname === '') return fail(`must name a host, such as ${rules.example}`);
    if (parsed.port === '0') return fail('must not name port 0');
    const hasCredentials = parsed.username !== '' || parsed.password !== '';
    if (hasCredentials && rules.credentials === 'refused') return fail(`must not carry a user name or password${rules.credentialsRefusedBecause ? `: ${rules.credentialsRefusedBecause}` : ''}`);
    if (hasMalformedEscape(parsed.username) || hasMalformedEscape(parsed.password)) return fail('has a % in its user name or password that starts no %-escape: write % as %25');
    if (parsed.hash !== '' || value.includes('#')) return fail(`must not contain #${rules.credentials === 'allowed' ? ' (write # in a password as %23)' : ''}`);
    if (parsed.search !== '' && rules.queryRefusedBecause) return fail(`must not carry query parameters: ${rules.queryRefusedBecause}`);
    if (rules.path && !rules.path.pattern.test(parsed.pathname)) return fail(rules.path.message);
  });
}
