import { MAX_JSON_OBJECT_KEYS } from '../../../services/contract';
import { findUnacceptableInput, findUnstorable, findWideObjectInText, JsonTooDeepError, toStorable, toStorableText } from '../../../services/core/json';

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < depth; level += 1) value = [value];
  return value;
}

describe('storable JSON', () => {
  it('finds the first NUL, unpaired surrogate or excess depth, with its path', () => {
    expect(findUnstorable({ a: [1, { b: 'x\u0000' }] }, 10, ['body'])).toEqual({ path: 'body.a.1.b', reason: 'NUL character' });
    expect(findUnstorable({ ['k\u0000']: 1 }, 10)).toEqual({ path: 'k\u0000', reason: 'NUL character' });
    expect(findUnstorable('\ud800', 10)).toEqual({ path: '', reason: 'unpaired surrogate' });
    expect(findUnstorable('\udc00x', 10)).toEqual({ path: '', reason: 'unpaired surrogate' });
    expect(findUnstorable('\ud83d\ude00 fine', 10)).toBeUndefined();
    expect(findUnstorable(nested(5), 5)).toBeUndefined();
    expect(findUnstorable(nested(6), 5)).toMatchObject({ reason: 'too deep' });
  });

  it('refuses a __proto__ key in input from outside, which storage alone would keep', () => {
    const input = JSON.parse('{"a":[{"ok":1},{"__proto__":{"polluted":true}}]}') as unknown;
    expect(findUnacceptableInput(input, 10, ['body'])).toEqual({ path: 'body.a.1.__proto__', reason: '__proto__ key' });
    expect(findUnstorable(input, 10)).toBeUndefined();
    // Only the key itself: the word as a value, or a constructor.prototype path (kept as data), is fine.
    expect(findUnacceptableInput(JSON.parse('{"note":"__proto__","constructor":{"prototype":{}}}'), 10)).toBeUndefined();
    expect(findUnacceptableInput({ a: 'x\u0000' }, 10)).toEqual({ path: 'a', reason: 'NUL character' });
  });

  it('refuses from outside a number PostgreSQL would write back as far more digits than it came with, and only that', () => {
    for (const refused of [1e21, -1e21, 1e308, Number.MAX_VALUE, 1e-21, -5e-324, Number.MIN_VALUE]) {
      expect(findUnacceptableInput({ a: [0, refused] }, 10, ['body'])).toEqual({ path: 'body.a.1', reason: 'number of too many digits' });
    }
    for (const accepted of [0, -0, 1, -1.5, 0.1, 1e20, 999_999_999_999_999_900_000, 1e-20, -1e-20, Number.MAX_SAFE_INTEGER, 123.456e-10]) {
      expect(findUnacceptableInput({ a: [accepted] }, 10)).toBeUndefined();
    }
    // Results a job produced are stored as they are: the rule is for what arrives from outside.
    expect(findUnstorable({ mean: 1e308 }, 10)).toBeUndefined();
  });

  it('says where the first problem is in document order, an object\'s keys before its values, and where nesting goes too deep', () => {
    expect(findUnacceptableInput({ a: [0, 'x\u0000'], b: 1e300 }, 10, ['body'])).toEqual({ path: 'body.a.1', reason: 'NUL character' });
    expect(findUnacceptableInput(JSON.parse('{"a":"x\\u0000","__proto__":1}'), 10)).toEqual({ path: '__proto__', reason: '__proto__ key' });
    expect(findUnstorable({ a: [[['x']]] }, 3, ['body'])).toEqual({ path: 'body.a.0.0', reason: 'too deep' });
    expect(findUnstorable([[[]]], 2)).toEqual({ path: '0.0', reason: 'too deep' });
    expect(findUnstorable({}, 0, ['body'])).toEqual({ path: 'body', reason: 'too deep' });
    expect(findUnacceptableInput(1e300, 10, ['body'])).toEqual({ path: 'body', reason: 'number of too many digits' });
    expect(findUnstorable([{}, [], { a: [] }], 3)).toBeUndefined();
  });

  it('walks half a million members of one array and names the last one when it is the one refused', () => {
    const payload: unknown[] = new Array(500_000).fill(0);
    expect(findUnacceptableInput({ payload }, 64, ['body'])).toBeUndefined();
    payload[499_999] = 'x\u0000';
    expect(findUnacceptableInput({ payload }, 64, ['body'])).toEqual({ path: 'body.payload.499999', reason: 'NUL character' });
  });

  it('refuses an object wider than MAX_JSON_OBJECT_KEYS from outside, naming the object, before any of its keys; results keep theirs', () => {
    const wide = (keys: number) => Object.fromEntries(Array.from({ length: keys }, (_, index) => [`k${index}`, index]));
    expect(findUnacceptableInput({ rows: [wide(MAX_JSON_OBJECT_KEYS)] }, 10, ['body'])).toBeUndefined();
    const over = { ...wide(MAX_JSON_OBJECT_KEYS), 'x\u0000': 1 };
    expect(findUnacceptableInput({ rows: [over] }, 10, ['body'])).toEqual({ path: 'body.rows.0', reason: 'too many keys' });
    expect(findUnacceptableInput(wide(MAX_JSON_OBJECT_KEYS + 1), 10, ['query'])).toEqual({ path: 'query', reason: 'too many keys' });
    expect(findUnstorable(wide(MAX_JSON_OBJECT_KEYS + 1), 10)).toBeUndefined();
  });

  it('finds the object wider than MAX_JSON_OBJECT_KEYS in the text before it is parsed, naming it as the walk of the parsed value does', () => {
    const text = (value: unknown) => Buffer.from(JSON.stringify(value));
    const wide = (keys: number, value: unknown = 0) => Object.fromEntries(Array.from({ length: keys }, (_, index) => [`k${index}`, value]));
    const awkwardKey = 'a "quoted" \\ key, with: {braces} [and] é😀';
    const documents = [
      { type: 'echo', input: { payload: wide(MAX_JSON_OBJECT_KEYS + 1) } },
      { type: 'echo', input: { payload: { list: ['{', '"', ',', [1, 2, { x: '}' }], { [awkwardKey]: [0, 1, wide(MAX_JSON_OBJECT_KEYS + 1, 'v,"}')] }] } } },
      { type: 'echo', input: { payload: [wide(MAX_JSON_OBJECT_KEYS, [1, 2]), wide(MAX_JSON_OBJECT_KEYS, { a: 1 })] } },
      { type: 'echo', input: { payload: new Array(100_000).fill({ a: 1, b: [2, 3], c: 'x' }) } },
      { type: 'echo', input: { payload: { rows: [wide(MAX_JSON_OBJECT_KEYS + 5, wide(3))] } } },
    ];
    for (const document of documents) {
      expect(findWideObjectInText(text(document), MAX_JSON_OBJECT_KEYS, ['body'])).toBe(findUnacceptableInput(document, 64, ['body'])?.path);
    }
    expect(findWideObjectInText(text(documents[1]), MAX_JSON_OBJECT_KEYS, ['body'])).toBe(`body.input.payload.list.4.${awkwardKey}.2`);
    // Whitespace between tokens, as a client may send it.
    expect(findWideObjectInText(Buffer.from(JSON.stringify(documents[0], null, 2)), MAX_JSON_OBJECT_KEYS, ['body'])).toBe('body.input.payload');
  });

  it('walks a document nested 100,000 deep without using the call stack', () => {
    expect(findUnstorable(nested(100_000), 64)).toMatchObject({ reason: 'too deep' });
  });

  it('repairs strings and keys, and returns the value itself when nothing needs repair', () => {
    const clean = { a: ['b', 1, null, { c: true }] };
    expect(toStorable(clean, 10)).toBe(clean);
    expect(toStorable({ ['na\u0000me']: 'v\ud800', list: ['\u0000'] }, 10)).toEqual({ ['na\ufffdme']: 'v\ufffd', list: ['\ufffd'] });
    expect(() => toStorable(nested(20), 10)).toThrow(JsonTooDeepError);
    expect(toStorableText('a\u0000b\udfffc')).toBe('a\ufffdb\ufffdc');
  });
});
