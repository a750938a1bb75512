import express, { type RequestHandler } from 'express';
import { MAX_JSON_DEPTH } from '../../contract';
import { ValidationError } from '../../core/errors';
import { findUnacceptableInput, LARGEST_NUMBER_MAGNITUDE, SMALLEST_NUMBER_MAGNITUDE, type UnacceptableReason } from '../../core/json';
import { UnsupportedMediaTypeError } from '../errors';
import { continueBody } from '../expect-continue';

const JSON_TYPES = ['application/json', 'application/*+json'];

function hasBody(headers: { 'transfer-encoding'?: string; 'content-length'?: string }): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

/**
 * body-parser's errors carry a `type` (see the problem handler), except the one it wraps
 * around a failed decompression (a body that is not the gzip, deflate or br its
 * Content-Encoding says): a 400 with zlib's error inside and no type.
 */
function isUndecodable(error: unknown): boolean {
  const candidate = error as { type?: unknown; status?: unknown } | null;
  return typeof candidate === 'object' && candidate !== null && candidate.type === undefined && candidate.status === 400;
}

/** Why a part of a request is refused, as the problem's field message says it. */
export const REFUSAL: Record<UnacceptableReason, string> = {
  'too deep': `is nested deeper than ${MAX_JSON_DEPTH} levels`,
  'NUL character': 'contains a NUL character (\\u0000), which cannot be stored',
  'unpaired surrogate': 'contains an unpaired UTF-16 surrogate, which is not valid Unicode and cannot be stored',
  '__proto__ key': 'has a key named __proto__, which is not accepted (JavaScript objects cannot keep it as data)',
  'number of too many digits': `has a number of ${LARGEST_NUMBER_MAGNITUDE} or more, or closer to 0 than ${SMALLEST_NUMBER_MAGNITUDE}: PostgreSQL stores JSON numbers exactly and writes every digit back (1e308 as 309 digits); send it as a string`,
};

const bodySizes = new WeakMap<object, number>();

/** Bytes of the request's JSON body as parsed (after any Content-Encoding was undone); undefined when it had none. */
export function jsonBodyBytes(req: object): number | undefined {
  return bodySizes.get(req);
}

/**
 * JSON bodies for JSON routes: over the limit → 413, malformed → 400, any other media
 * type → 415 (rather than an empty body that fails validation with a misleading message).
 * A body that parses but could never be stored (NUL characters, unpaired surrogates), that
 * holds a `__proto__` key, or that nests deeper than MAX_JSON_DEPTH is refused with 400
 * naming the field, before any schema walks it.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const parse = express.json({
    limit: limitBytes,
    type: JSON_TYPES,
    strict: true,
    // Called with the body as it is about to be parsed: its size is known here without another pass.
    verify: (req, _res, body) => {
      bodySizes.set(req, body.length);
    },
  });
  return (req, res, next) => {
    if (hasBody(req.headers) && !req.is(JSON_TYPES)) {
      next(new UnsupportedMediaTypeError(`this endpoint takes application/json, not ${req.headers['content-type'] ?? 'an untyped body'}`));
      return;
    }
    continueBody(req, res);
    parse(req, res, (error?: unknown) => {
      if (error) {
        next(isUndecodable(error) ? new ValidationError(`the request body is not valid ${String(req.headers['content-encoding']).trim().toLowerCase()} data`) : error);
        return;
      }
      const problem = findUnacceptableInput(req.body, MAX_JSON_DEPTH, ['body']);
      if (problem) {
        next(new ValidationError(`the request body ${REFUSAL[problem.reason]}`, [{ field: problem.path || 'body', message: REFUSAL[problem.reason] }]));
        return;
      }
      next();
    });
  };
}
