import { MAX_JSON_DEPTH } from '../../../services/contract';
import { MAX_RESULT_DEPTH, storableResult } from '../../../services/worker/storable-result';
import { PermanentJobError } from '../../../services/worker/processor';

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < depth; level += 1) value = [value];
  return value;
}

describe('storableResult', () => {
  it('answers a result PostgreSQL can store as it is, the same object', () => {
    const result = { digest: 'abc', sizes: [1, 2, 3] };
    expect(storableResult(result)).toBe(result);
  });

  it('replaces the characters PostgreSQL refuses (NUL, unpaired surrogates) with U+FFFD', () => {
    expect(storableResult({ text: 'a\u0000b', ['k\ud800']: 1 })).toEqual({ text: 'a\ufffdb', ['k\ufffd']: 1 });
  });

  it('allows results twice as deep as inputs, since echo wraps its payload', () => {
    expect(MAX_RESULT_DEPTH).toBe(MAX_JSON_DEPTH * 2);
    const deepest = nested(MAX_RESULT_DEPTH);
    expect(storableResult(deepest)).toBe(deepest);
  });

  it('fails a deeper result as permanent, naming the limit: retrying a processor bug cannot help', () => {
    expect(() => storableResult(nested(MAX_RESULT_DEPTH + 1))).toThrow(PermanentJobError);
    expect(() => storableResult(nested(MAX_RESULT_DEPTH + 1))).toThrow(`the processor returned a result the value is nested deeper than ${MAX_RESULT_DEPTH} levels`);
  });
});
