import { clockVerdict } from '../../../services/cli/commands/doctor';
import { SUBMIT_START_MARGIN_MS } from '../../../services/core/jobs/submit';

describe("doctor's clock check", () => {
  it.each([
    [0, 1, 'ok', /within 1 ms/],
    [-40, 2, 'ok', /within 40 ms/],
    [250, 2, 'warn', /250 ms ahead of this host's.*NTP/],
    [-300, 5, 'warn', /300 ms behind this host's/],
    [SUBMIT_START_MARGIN_MS, 5, 'fail', /1000 ms ahead of.*1000 ms margin/],
    [-(SUBMIT_START_MARGIN_MS / 2 + 50), 10, 'fail', /550 ms behind/],
  ])('a skew of %d ms (±%d) is %s', (skewMs, uncertaintyMs, verdict, detail) => {
    const result = clockVerdict({ skewMs, uncertaintyMs });
    expect(result.verdict).toBe(verdict);
    expect(result.detail).toMatch(detail);
  });

  it('does not fail a skew the round trip cannot tell from none', () => {
    expect(clockVerdict({ skewMs: SUBMIT_START_MARGIN_MS / 2 + 100, uncertaintyMs: 200 }).verdict).toBe('warn');
  });

  it('warns when the clock could not be read', () => {
    expect(clockVerdict({ skewMs: Number.NaN, uncertaintyMs: 1 })).toEqual({ verdict: 'warn', detail: "could not read PostgreSQL's clock" });
  });
});
