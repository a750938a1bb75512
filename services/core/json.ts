/**
 * What PostgreSQL can store of a JSON value. `jsonb` and `text` refuse two things JavaScript
 * strings may hold: the NUL character (22P05, 22021) and a UTF-16 surrogate without its pair
 * (22P02). Input from outside is checked and refused (`findUnstorable`); output a processor
 * produced is repaired (`toStorable`), since the job did its work and only a character is
 * in the way.
 */

import { MAX_JSON_OBJECT_KEYS } from '../contract/http';
import { findFirstInJson } from '../contract/json-walk';

// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for.
const NUL_OR_LONE_SURROGATE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const NUL_OR_LONE_SURROGATE_GLOBAL = new RegExp(NUL_OR_LONE_SURROGATE.source, 'g');
const REPLACEMENT_CHARACTER = '\ufffd';

export type UnstorableReason = 'too deep' | 'NUL character' | 'unpaired surrogate';

export interface UnstorablePart {
  /** Dotted path from the root, e.g. `input.payload.rows.3`. */
  path: string;
  reason: UnstorableReason;
}

function characterProblem(text: string): UnstorableReason | undefined {
  const match = NUL_OR_LONE_SURROGATE.exec(text);
  if (!match) return undefined;
  return match[0] === '\u0000' ? 'NUL character' : 'unpaired surrogate';
}

/** The first part of `value`, in document order, with a problem: a string or key (`keyProblem`) or number (`numberProblem`), or nesting past `maxDepth`. */
function findFirst<R extends string>(
  value: unknown,
  maxDepth: number,
  rootPath: string[],
  keyProblem: (key: string) => R | undefined,
  numberProblem: (value: number) => R | undefined = () => undefined,
  objectProblem: (keys: string[]) => R | undefined = () => undefined,
): { path: string; reason: R | UnstorableReason } | undefined {
  const problem = findFirstInJson<R | UnstorableReason>(value, {
    maxDepth,
    object: (_object, keys) => objectProblem(keys),
    key: keyProblem,
    scalar: (member) => (typeof member === 'string' ? characterProblem(member) : typeof member === 'number' ? numberProblem(member) : undefined),
  });
  return problem && { path: [...rootPath, ...problem.path].join('.'), reason: problem.reason };
}

/** The first part of `value` that cannot be stored, or undefined. */
export function findUnstorable(value: unknown, maxDepth: number, rootPath: string[] = []): UnstorablePart | undefined {
  return findFirst(value, maxDepth, rootPath, characterProblem);
}

/**
 * Why a JSON document from outside is refused: what cannot be stored, a key no JavaScript
 * object keeps, a number stored as many more digits, or an object wider than
 * MAX_JSON_OBJECT_KEYS.
 */
export type UnacceptableReason = UnstorableReason | '__proto__ key' | 'number of too many digits' | 'too many keys';

/**
 * The magnitudes past which a JSON number is refused from outside. jsonb keeps numbers as
 * `numeric`, exactly, and writes every digit back: `1e308` is read back as 309 digits, so an
 * input of such numbers grows 44 times between what a client sends and what every read of it
 * (the worker's, each GET) parses. Within these bounds a number comes back at most about as
 * long as JavaScript writes it (1e20 is 21 digits either way) or four times what a client
 * wrote (1e-20); outside them, it can be sent as a string.
 */
export const LARGEST_NUMBER_MAGNITUDE = 1e21;
export const SMALLEST_NUMBER_MAGNITUDE = 1e-20;

function numberProblem(value: number): 'number of too many digits' | undefined {
  const magnitude = Math.abs(value);
  return magnitude >= LARGEST_NUMBER_MAGNITUDE || (magnitude > 0 && magnitude < SMALLEST_NUMBER_MAGNITUDE) ? 'number of too many digits' : undefined;
}

/**
 * The first part of a JSON document from outside that is refused, or undefined: what
 * findUnstorable finds, a number PostgreSQL would store as far more digits than it was sent
 * with (LARGEST_NUMBER_MAGNITUDE), an object of more than MAX_JSON_OBJECT_KEYS keys (found
 * before its keys are walked), and a key named `__proto__`. JSON.parse keeps that key, but copying
 * it member by member by assignment (as the schemas' parse does) sets the copy's prototype
 * instead, so the member would vanish without a word; a processor that deep-merges its input
 * could even change the prototype every object shares. Refused, it changes nothing.
 */
export function findUnacceptableInput(value: unknown, maxDepth: number, rootPath: string[] = []): { path: string; reason: UnacceptableReason } | undefined {
  return findFirst<UnacceptableReason>(
    value,
    maxDepth,
    rootPath,
    (key) => (key === '__proto__' ? '__proto__ key' : characterProblem(key)),
    numberProblem,
    (keys) => (keys.length > MAX_JSON_OBJECT_KEYS ? 'too many keys' : undefined),
  );
}

/** `text` with every NUL and unpaired surrogate replaced by U+FFFD. */
export function toStorableText(text: string): string {
  return NUL_OR_LONE_SURROGATE.test(text) ? text.replace(NUL_OR_LONE_SURROGATE_GLOBAL, REPLACEMENT_CHARACTER) : text;
}

/** A JSON document nested deeper than PostgreSQL should be asked to parse. */
export class JsonTooDeepError extends Error {
  constructor(readonly maxDepth: number) {
    super(`the value is nested deeper than ${maxDepth} levels`);
    this.name = this.constructor.name;
  }
}

/**
 * `value` as JSON PostgreSQL accepts: the same document with NUL and unpaired surrogates
 * in strings and keys replaced by U+FFFD. Returns `value` itself when nothing needed
 * repair (the common case costs one walk, no copy). Throws JsonTooDeepError past `maxDepth`.
 */
export function toStorable(value: unknown, maxDepth: number): unknown {
  const problem = findUnstorable(value, maxDepth);
  if (!problem) return value;
  if (problem.reason === 'too deep') throw new JsonTooDeepError(maxDepth);
  // Round-trips through JSON text so the copy has exactly the shape PostgreSQL will store
  // (undefined members dropped, toJSON applied); the reviver repairs strings and keys.
  const repaired: unknown = JSON.parse(JSON.stringify(value), function repair(this: Record<string, unknown>, key, item: unknown) {
    if (key !== '' && characterProblem(key)) {
      delete this[key];
      this[toStorableText(key)] = typeof item === 'string' ? toStorableText(item) : item;
      return undefined;
    }
    return typeof item === 'string' ? toStorableText(item) : item;
  });
  return repaired;
}
