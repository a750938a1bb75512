import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { REQUEST_ID_HEADER } from '../../contract';
import { runWithContext } from '../../core/context';
import '../request';

const WELL_FORMED_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Takes the caller's X-Request-Id when it is well-formed (so a trace crosses services),
 * generates one otherwise (so a hostile header cannot inject into logs), echoes it on the
 * response and binds it to everything this request logs.
 */
export const requestContext: RequestHandler = (req, res, next) => {
  const offered = req.headers[REQUEST_ID_HEADER];
  const requestId = typeof offered === 'string' && WELL_FORMED_REQUEST_ID.test(offered) ? offered : randomUUID();
  req.requestId = requestId;
  res.setHeader(REQUEST_ID_HEADER, requestId);
  runWithContext({ requestId }, next);
};
