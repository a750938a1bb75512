/** What a walk of a JSON document looks for: each rule answers why a part is refused, or undefined. */
export interface JsonRules<R extends string> {
  /** Past this many nested containers the walk stops with 'too deep'. Depth counts containers: `{}` is 1, `{"a": []}` is 2. */
  maxDepth?: number;
  /** Every member that is not an array or an object: a string, number, boolean, null, or what is not JSON at all. */
  scalar(value: unknown): R | undefined;
  /** Every object's keys, before its values are looked at. */
  key?(key: string): R | undefined;
  /** Every object that is not an array, with its own enumerable keys, before any key is looked at. */
  object?(value: object, keys: string[]): R | undefined;
}

/** Where a refused part is: keys of objects, indexes of arrays, from the root. */
export type JsonPath = (string | number)[];

/** A container being walked: its members are looked at in order, from `next` on. */
interface Level {
  members: unknown[];
  /** The object's keys, in the order of `members`; undefined for an array. */
  keys: string[] | undefined;
  next: number;
  parent: Level | undefined;
  /** Where this container sits in its parent. */
  keyInParent: string | number;
  depth: number;
}

function pathOf(level: Level | undefined, member?: string | number): JsonPath {
  const path: JsonPath = member === undefined ? [] : [member];
  for (let current = level; current?.parent !== undefined; current = current.parent) path.push(current.keyInParent);
  return path.reverse();
}

/**
 * The first part of `value`, in document order, that a rule refuses, or that nests past
 * `maxDepth`. Walks with a stack of containers, so a document nested far deeper than any
 * limit costs a loop, not the call stack. It allocates nothing per member and spells out a
 * path only for the part it refuses, since it runs over every body a client sends
 * (bench/FINDINGS.md).
 */
export function findFirstInJson<R extends string>(value: unknown, rules: JsonRules<R>): { path: JsonPath; reason: R | 'too deep' } | undefined {
  const maxDepth = rules.maxDepth ?? Number.POSITIVE_INFINITY;
  const open = (container: object, parent: Level | undefined, keyInParent: string | number): Level | { path: JsonPath; reason: R | 'too deep' } => {
    const depth = (parent?.depth ?? 0) + 1;
    if (depth > maxDepth) return { path: pathOf(parent, parent ? keyInParent : undefined), reason: 'too deep' };
    if (Array.isArray(container)) return { members: container, keys: undefined, next: 0, parent, keyInParent, depth };
    const keys = Object.keys(container);
    const objectReason = rules.object?.(container, keys);
    if (objectReason) return { path: pathOf(parent, parent ? keyInParent : undefined), reason: objectReason };
    const level: Level = { members: [], keys, next: 0, parent, keyInParent, depth };
    for (const key of keys) {
      const reason = rules.key?.(key);
      if (reason) return { path: pathOf(level, key), reason };
      level.members.push((container as Record<string, unknown>)[key]);
    }
    return level;
  };

  if (value === null || typeof value !== 'object') {
    const reason = rules.scalar(value);
    return reason ? { path: [], reason } : undefined;
  }
  const root = open(value, undefined, '');
  if (!('members' in root)) return root;
  const stack: Level[] = [root];
  while (stack.length > 0) {
    const level = stack[stack.length - 1] as Level;
    if (level.next >= level.members.length) {
      stack.pop();
      continue;
    }
    const index = level.next;
    level.next += 1;
    const member = level.members[index];
    const key = level.keys?.[index] ?? index;
    if (member !== null && typeof member === 'object') {
      const child = open(member, level, key);
      if (!('members' in child)) return child;
      stack.push(child);
      continue;
    }
    const reason = rules.scalar(member);
    if (reason) return { path: pathOf(level, key), reason };
  }
  return undefined;
}
