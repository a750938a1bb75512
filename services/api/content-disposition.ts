/**
 * The Content-Disposition of a download (RFC 6266): `filename*` carries the name itself
 * (RFC 8187: UTF-8, percent-encoded outside attr-char, so `'`, `(`, `)` and `*` are encoded
 * too, which encodeURIComponent leaves alone), and `filename` an ASCII stand-in for clients
 * that read only it (`curl -OJ` among them), with what a quoted-string or a decoder could
 * misread (`"`, `\`, `%`, anything outside printable ASCII) replaced by `_`. Clients that
 * know `filename*` prefer it.
 */
export function attachmentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/gu, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
