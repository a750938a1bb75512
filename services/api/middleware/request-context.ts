import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { REQUEST_ID_HEADER } from '../../contract';
import type { Logger } from '../../core/logger';
import '../request';

const WELL_FORMED_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Takes the caller's X-Request-Id when it is well-formed (so a trace crosses services),
 * generates one otherwise (so a hostile header cannot inject into logs), echoes it on the
 * response and gives the request a logger bound to it (`req.log`), which the routes hand
 * to the core services they call.
 */
export function requestContext(log: Logger): RequestHandler {
  return (req, res, next) => {
    const offered = req.headers[REQUEST_ID_HEADER];
    const requestId = typeof offered === 'string' && WELL_FORMED_REQUEST_ID.test(offered) ? offered : randomUUID();
    req.requestId = requestId;
    req.log = log.child({ requestId });
    res.setHeader(REQUEST_ID_HEADER, requestId);
    next();
  };
}
