import type { RequestHandler } from 'express';
import { ForbiddenError } from '../../core/errors';

/** Whether an Origin header names the host the request was sent to; `null` and malformed origins never do. */
function originMatchesHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * For the endpoints the refresh cookie alone authenticates (refresh, logout). SameSite=Strict
 * does not stop a page of the same site on another port or subdomain, and a cross-site
 * navigation's answer still clears the cookie; so a request a browser sends for a page of
 * another origin is refused before the cookie is read or touched. Browsers say where a request
 * comes from in Sec-Fetch-Site (and in Origin, for those without it); clients that are not
 * browsers send neither and pass.
 */
export const sameOriginOnly: RequestHandler = (req, _res, next) => {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (site !== undefined ? site !== 'same-origin' : origin !== undefined && !originMatchesHost(origin, req.headers.host)) {
    throw new ForbiddenError('sent by a page of another origin: the session cookie is used only by the console\'s own pages');
  }
  next();
};
