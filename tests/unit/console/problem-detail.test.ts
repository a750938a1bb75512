import { detailBesideWait } from '../../../services/console/src/problem-detail';

describe('the detail beside a wait (services/console/src/problem-detail.ts)', () => {
  it.each([
    ['too many failed logins: this account is locked for now; see Retry-After', 'too many failed logins: this account is locked for now'],
    ['too many password-reset requests for this address; see Retry-After', 'too many password-reset requests for this address'],
    ['the database is unavailable (a request found it away moments ago); try again shortly', 'the database is unavailable (a request found it away moments ago)'],
    ['Rate limited; see Retry-After.', 'Rate limited'],
    ['see Retry-After', ''],
    ['Too many attempts from this address or for this account; see Retry-After and RateLimit-*.', 'Too many attempts from this address or for this account'],
  ])('keeps what %j says beyond the wait', (detail, kept) => {
    expect(detailBesideWait(detail)).toBe(kept);
  });

  it('leaves a detail that does not point at the wait as it is', () => {
    expect(detailBesideWait('rate limit exceeded')).toBe('rate limit exceeded');
    expect(detailBesideWait('see the Retry-After header of the previous answer; it was wrong')).toBe('see the Retry-After header of the previous answer; it was wrong');
  });
});
