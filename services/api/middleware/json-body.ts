import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { MAX_JSON_DEPTH, MAX_JSON_OBJECT_KEYS } from '../../contract';
import { PayloadTooLargeError, ServiceUnavailableError, ValidationError } from '../../core/errors';
import { LARGE_SUBMIT_BYTES } from '../../core/jobs/submit';
import { findUnacceptableInput, findWideObjectInText, LARGEST_NUMBER_MAGNITUDE, SMALLEST_NUMBER_MAGNITUDE, type UnacceptableReason } from '../../core/json';
import { MemoryBudget } from '../../core/memory-budget';
import { declaredLength, isEncoded } from '../body-headers';
import { atOncePerOwner } from '../at-once';
import { RequestTimeoutError, UnsupportedMediaTypeError } from '../errors';
import { SlowBodies } from './slow-bodies';
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
  'too many keys': `has an object of more than ${MAX_JSON_OBJECT_KEYS} keys (a list of any length is an array)`,
  'number of too many digits': `has a number of ${LARGEST_NUMBER_MAGNITUDE} or more, or closer to 0 than ${SMALLEST_NUMBER_MAGNITUDE}: PostgreSQL stores JSON numbers exactly and writes every digit back (1e308 as 309 digits); send it as a string`,
};

const bodySizes = new WeakMap<object, number>();

/** Bytes of the request's JSON body as parsed (after any Content-Encoding was undone); undefined when it had none. */
export function jsonBodyBytes(req: object): number | undefined {
  return bodySizes.get(req);
}

/** A body this large or larger, declared or of unknown size, waits for room before it is read: as large as the submit path writes apart. */
export const LARGE_BODY_BYTES = LARGE_SUBMIT_BYTES;

/**
 * Large bodies (LARGE_BODY_BYTES or more, declared or of unknown size) one API process
 * reads, parses and keeps until their responses at once, in bodies at the JSON limit. A
 * parsed MiB of small JSON values takes several MiB of heap, and such submits then wait for
 * the large-submit batcher, a few a statement: unbounded, one user's 400 concurrent MiB
 * submits took the API to 1.8 GB resident. Sixteen keep that batcher busy.
 */
const LARGE_BODIES_AT_ONCE = 16;
/**
 * Large bodies of one owner (a user, or a client address on public routes) waiting for room
 * or held at once, per process: more are refused (429), so that one user cannot take all the
 * room and make everyone else's large bodies wait for theirs.
 */
export const LARGE_BODIES_AT_ONCE_PER_OWNER = 4;
/**
 * Smaller bodies of one owner arriving for over SLOW_BODY_MS at once, per process (SlowBodies):
 * without a bound one user could hold 20,000 connections (the descriptors of a local run)
 * each with 63 KiB of a body, 1.2 GB, for Node's 300 s request timeout.
 */
export const SLOW_SMALL_BODIES_PER_OWNER = 16;
const SLOW_BODY_MS = 1_000;
/** How long a large body waits for room before it is refused (503), about as long as a submit waits for its commit. */
const LARGE_BODY_WAIT_MS = 5_000;
const LARGE_BODY_RETRY_AFTER_SECONDS = 2;

export interface JsonBodyOptions {
  /**
   * How long a large body let in may take to arrive (LARGE_BODY_TIMEOUT_SECONDS; 1 MiB in
   * 30 s is 35 KB/s). Without it a client sending a byte now and then would hold its room for
   * Node's request timeout (300 s).
   */
  largeBodyTimeoutSeconds?: number;
}

/**
 * Room to reserve for the body in the large-body budget: its declared length, or the limit
 * when it has none or is encoded (gzip may inflate to the limit); undefined for a small body.
 */
function largeBodyReservation(req: Request, limitBytes: number): number | undefined {
  const declared = declaredLength(req);
  const bytes = declared === undefined || !Number.isFinite(declared) || isEncoded(req) ? limitBytes : declared;
  return bytes >= LARGE_BODY_BYTES ? bytes : undefined;
}

/** Room for an encoded body's header (a gzip header's extra fields are at most 64 KiB). */
const ENCODED_BODY_HEADER_BYTES = 64 * 1024;

/**
 * The most of a body that can arrive for it to fit the limit. An encoded body's limit is on what
 * it decodes to, known only as it is decoded, yet what arrives of it is bounded too: gzip,
 * deflate, br and zstd add a few bytes a block to data they cannot compress, far below a 64th,
 * so a body longer on the wire than the limit, a 64th of it and a header cannot decode to
 * within the limit.
 */
function mostBytesOnTheWire(req: Request, limitBytes: number): number {
  return isEncoded(req) ? limitBytes + Math.ceil(limitBytes / 64) + ENCODED_BODY_HEADER_BYTES : limitBytes;
}

/**
 * Refuses (413) a body of undeclared length as soon as more of it has arrived than can fit the
 * limit (mostBytesOnTheWire): body-parser, having found it too long (or, decoding it, having
 * passed the limit), reads the whole rest of it before it answers, however long. What arrived
 * of it then leaves the connection unfit for another request, and the answer closes it
 * (settleUnreadBody). Answers how to stop watching.
 */
function refuseOncePastLimit(req: Request, limitBytes: number, refuse: (error: unknown) => void): (() => void) | undefined {
  if (req.headers['content-length'] !== undefined) return undefined;
  const mostBytes = mostBytesOnTheWire(req, limitBytes);
  let bytes = 0;
  const count = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > mostBytes) refuse(new PayloadTooLargeError(`the request body is larger than the limit of ${limitBytes} bytes`));
  };
  req.on('data', count);
  return () => req.off('data', count);
}

/** Whose bodies a request's counts: the caller's, or on public routes the client address's. */
function ownerOf(req: Request): string {
  return req.user ? `user ${req.user.userId}` : `address ${req.ip ?? ''}`;
}

/**
 * JSON bodies for JSON routes: over the limit → 413, malformed → 400, any other media
 * type → 415 (rather than an empty body that fails validation with a misleading message).
 * A body that parses but could never be stored (NUL characters, unpaired surrogates), that
 * holds a `__proto__` key, or that nests deeper than MAX_JSON_DEPTH is refused with 400
 * naming the field, before any schema walks it. A large body waits its owner's turn for room
 * (LARGE_BODIES_AT_ONCE) before a byte of it is read, and then has largeBodyTimeoutSeconds to
 * arrive (408); small ones, the submit path's, go straight through, while their owner has fewer
 * than SLOW_SMALL_BODIES_PER_OWNER arriving for over a second.
 */
export function jsonBody(limitBytes: number, { largeBodyTimeoutSeconds = 30 }: JsonBodyOptions = {}): RequestHandler {
  const parse = express.json({
    limit: limitBytes,
    type: JSON_TYPES,
    strict: true,
    // Called with the body (decoded, when it had a Content-Encoding) as it is about to be
    // parsed: its size is known here without another pass, and an object too wide to take is
    // refused before JSON.parse spends its time on it (body-parser hands the error on as it is).
    verify: (req, _res, body) => {
      bodySizes.set(req, body.length);
      const wide = findWideObjectInText(body, MAX_JSON_OBJECT_KEYS, ['body']);
      if (wide !== undefined) throw new ValidationError(`the request body ${REFUSAL['too many keys']}`, [{ field: wide, message: REFUSAL['too many keys'] }]);
    },
  });
  const largeBodies = new MemoryBudget(LARGE_BODIES_AT_ONCE * limitBytes);
  const largeBodiesOfOwner = atOncePerOwner(LARGE_BODIES_AT_ONCE_PER_OWNER, 'large request bodies', LARGE_BODY_RETRY_AFTER_SECONDS);
  const slowBodies = new SlowBodies(SLOW_SMALL_BODIES_PER_OWNER, SLOW_BODY_MS, LARGE_BODY_RETRY_AFTER_SECONDS);

  const read = (req: Request, res: Response, next: NextFunction) => {
    continueBody(req, res);
    let settled = false;
    let stopWatching: (() => void) | undefined;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      stopWatching?.();
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
    };
    parse(req, res, settle);
    if (!settled) stopWatching = refuseOncePastLimit(req, limitBytes, settle);
  };

  /** Resolves once the body has room, held until the response closes; rejects after LARGE_BODY_WAIT_MS or when the client goes away. */
  const admit = async (req: Request, res: Response, bytes: number): Promise<void> => {
    const owner = ownerOf(req);
    largeBodiesOfOwner(owner, res);
    const waiting = new AbortController();
    const gone = () => waiting.abort(new Error('the client went away while its body waited'));
    const tooLong = setTimeout(
      () => waiting.abort(new ServiceUnavailableError('the server is reading as many large request bodies as it holds at once; try again shortly', LARGE_BODY_RETRY_AFTER_SECONDS)),
      LARGE_BODY_WAIT_MS,
    );
    res.once('close', gone);
    try {
      const release = await largeBodies.acquire(bytes, owner, waiting.signal);
      res.once('close', release);
    } finally {
      clearTimeout(tooLong);
      res.off('close', gone);
    }
  };

  const readInTime = (req: Request, res: Response, next: NextFunction) => {
    let late = false;
    const deadline = setTimeout(() => {
      late = true;
      // The rest of the body is not wanted: the connection closes after the answer.
      res.setHeader('Connection', 'close');
      next(new RequestTimeoutError(`a request body of ${LARGE_BODY_BYTES} bytes or more must arrive within ${largeBodyTimeoutSeconds} s of being let in`));
    }, largeBodyTimeoutSeconds * 1_000);
    read(req, res, (error?: unknown) => {
      clearTimeout(deadline);
      if (!late) next(error);
    });
  };

  return (req, res, next) => {
    if (!hasBody(req.headers)) {
      read(req, res, next);
      return;
    }
    if (!req.is(JSON_TYPES)) {
      next(new UnsupportedMediaTypeError(`this endpoint takes application/json, not ${req.headers['content-type'] ?? 'an untyped body'}`));
      return;
    }
    // Refused before a byte is read: body-parser would read the whole body first, however long,
    // to drop it.
    if (Number(req.headers['content-length']) > mostBytesOnTheWire(req, limitBytes)) {
      next(new PayloadTooLargeError(`the request body is larger than the limit of ${limitBytes} bytes`));
      return;
    }
    const reservation = largeBodyReservation(req, limitBytes);
    if (reservation === undefined) {
      let arrived: () => void;
      try {
        arrived = slowBodies.start(ownerOf(req));
      } catch (error) {
        next(error);
        return;
      }
      read(req, res, (error?: unknown) => {
        arrived();
        next(error);
      });
      return;
    }
    admit(req, res, reservation).then(
      () => readInTime(req, res, next),
      (error: unknown) => {
        if (req.socket.destroyed) return;
        next(error);
      },
    );
  };
}
