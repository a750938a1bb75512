import { findNonJson, JsonValue } from '../../../services/contract/json-value';

describe('JsonValue', () => {
  it('takes every JSON value as it is, without copying it', () => {
    const value = { a: [1, 'two', null, true, { b: [] }], c: {} };
    expect(JsonValue.parse(value)).toBe(value);
    for (const scalar of ['', 0, -1.5, false, null]) expect(JsonValue.parse(scalar)).toBe(scalar);
    expect(JsonValue.parse(Object.assign(Object.create(null) as object, { a: 1 }))).toEqual({ a: 1 });
  });

  it.each([
    ['undefined in an array', [1, undefined], [1], 'undefined'],
    ['undefined as a member', { a: { b: undefined } }, ['a', 'b'], 'undefined'],
    ['NaN', { a: [0, NaN] }, ['a', 1], 'NaN'],
    ['Infinity', [[Infinity]], [0, 0], 'Infinity'],
    ['a Date', { at: new Date(0) }, ['at'], 'an object of class Date'],
    ['a Map', [new Map()], [0], 'an object of class Map'],
    ['a function', { f: () => 1 }, ['f'], 'a function'],
    ['a bigint', { n: 1n }, ['n'], 'a bigint'],
  ])('refuses %s, naming where it is', (_name, value, path, found) => {
    expect(findNonJson(value)).toEqual({ path, found });
    const result = JsonValue.safeParse(value);
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([expect.objectContaining({ path, message: `expected a JSON value, found ${found}` })]);
  });

  it('looks at every member of a long array and nests without the call stack', () => {
    const payload: unknown[] = new Array(500_000).fill(0);
    expect(findNonJson(payload)).toBeUndefined();
    payload[499_999] = undefined;
    expect(findNonJson(payload)).toEqual({ path: [499_999], found: 'undefined' });
    let deep: unknown = 'leaf';
    for (let level = 0; level < 100_000; level += 1) deep = [deep];
    expect(findNonJson(deep)).toBeUndefined();
  });
});
