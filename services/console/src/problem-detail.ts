/**
 * The API's detail of an answer that names a wait, without its pointer at that wait ("; see
 * Retry-After", "; try again shortly"): the reader of the page sees no header, and the console
 * says when to try again itself. What the detail says beyond that stays (an account locked,
 * the database away); empty when the pointer was all it said.
 */
export function detailBesideWait(detail: string): string {
  return detail.replace(/\s*[;,.]?\s*(see Retry-After\b[^;]*|try again (shortly|later))\.?\s*$/i, '').trim();
}
