import { requestHash } from '../../../services/core/jobs/submit';

describe('requestHash', () => {
  const base = { type: 'echo', input: { payload: { a: 1, b: [1, 2] } }, maxAttempts: 3, priority: 0 };

  it('does not depend on key order or on undefined members', () => {
    expect(requestHash(base)).toBe(requestHash({ priority: 0, maxAttempts: 3, input: { payload: { b: [1, 2], a: 1, c: undefined } }, type: 'echo' }));
  });

  it('tells different requests apart', () => {
    expect(requestHash(base)).not.toBe(requestHash({ ...base, priority: 1 }));
    expect(requestHash(base)).not.toBe(requestHash({ ...base, input: { payload: { a: 1, b: [2, 1] } } }));
    expect(requestHash(base)).not.toBe(requestHash({ ...base, input: { payload: { a: '1', b: [1, 2] } } }));
  });

  it('is a hex SHA-256', () => {
    expect(requestHash(base)).toMatch(/^[0-9a-f]{64}$/);
  });
});
