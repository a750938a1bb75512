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

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/**
 * Where the first object of more than `maxKeys` keys of a JSON text is (its dotted path,
 * as findUnacceptableInput says it), found over the UTF-8 bytes before they are parsed, or
 * undefined. JSON.parse alone of one object of 90,000 keys holds the event loop for a third
 * of a second or more, so a body holding one is refused before that; one pass over the
 * bytes costs a few milliseconds a MiB. The text is not validated here (the parse that
 * follows does that): on malformed text the answer means nothing. A text shorter than
 * 4 × maxKeys bytes cannot hold such an object (each member takes at least `"":0` and a
 * comma), and is not read.
 */
export function findWideObjectInText(text: Uint8Array, maxKeys: number, rootPath: string[] = []): string | undefined {
  if (text.length < maxKeys * 4) return undefined;
  // One entry per open container: its members so far, whether it is an object, and an
  // object's current key as a span of the text.
  const members: number[] = [];
  const isObject: boolean[] = [];
  const keyStart: number[] = [];
  const keyEnd: number[] = [];
  let top = -1;
  // Right after `{`, `[` or `,`: the next token starts a member of the open container.
  let awaitingMember = false;
  let lastStringStart = -1;
  let lastStringEnd = -1;
  const pathTo = (level: number): string => {
    const path = [...rootPath];
    for (let parent = 0; parent < level; parent += 1) {
      path.push(isObject[parent] ? String(JSON.parse(Buffer.from(text.subarray(keyStart[parent], keyEnd[parent])).toString('utf8'))) : String((members[parent] as number) - 1));
    }
    return path.join('.');
  };
  const startMember = (): boolean => {
    if (!awaitingMember || top < 0) return false;
    awaitingMember = false;
    members[top] = (members[top] as number) + 1;
    return isObject[top] === true && (members[top] as number) > maxKeys;
  };
  for (let index = 0; index < text.length; index += 1) {
    const byte = text[index] as number;
    if (byte === QUOTE) {
      lastStringStart = index;
      for (index += 1; index < text.length && text[index] !== QUOTE; index += 1) if (text[index] === BACKSLASH) index += 1;
      lastStringEnd = index + 1;
      if (startMember()) return pathTo(top);
    } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      if (startMember()) return pathTo(top);
      top += 1;
      members[top] = 0;
      isObject[top] = byte === OPEN_OBJECT;
      awaitingMember = true;
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      top -= 1;
      awaitingMember = false;
    } else if (byte === COMMA) {
      awaitingMember = true;
    } else if (byte === COLON) {
      if (top >= 0) {
        keyStart[top] = lastStringStart;
        keyEnd[top] = lastStringEnd;
      }
    } else if (!isJsonWhitespace(byte)) {
      if (startMember()) return pathTo(top);
    }
  }
  return undefined;
}
