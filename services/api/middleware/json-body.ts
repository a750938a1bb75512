import express, { type RequestHandler } from 'express';
import { UnsupportedMediaTypeError } from '../errors';

const JSON_TYPES = ['application/json', 'application/*+json'];

function hasBody(headers: { 'transfer-encoding'?: string; 'content-length'?: string }): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

/**
 * JSON bodies for JSON routes: over the limit → 413, malformed → 400, any other media
 * type → 415 (rather than an empty body that fails validation with a misleading message).
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const parse = express.json({ limit: limitBytes, type: JSON_TYPES, strict: true });
  return (req, res, next) => {
    if (hasBody(req.headers) && !req.is(JSON_TYPES)) {
      next(new UnsupportedMediaTypeError(`this endpoint takes application/json, not ${req.headers['content-type'] ?? 'an untyped body'}`));
      return;
    }
    // raw-body binds its callback to this async context itself (tests/unit/api/json-body.test.ts),
    // so the request's log context survives a body that arrives over several reads.
    parse(req, res, next);
  };
}
