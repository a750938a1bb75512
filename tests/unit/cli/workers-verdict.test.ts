import { workersVerdict } from '../../../services/cli/commands/doctor';

describe("doctor's workers check", () => {
  const now = 1_700_000_000_000;

  it('counts the workers whose heartbeat is within the timeout', () => {
    expect(workersVerdict({ a: String(now - 5_000), b: String(now - 90_000) }, now, 30)).toEqual({ verdict: 'ok', detail: '1 alive (heartbeat within 30 s)' });
  });

  it('says how long ago the last heartbeat was when every known worker is silent', () => {
    expect(workersVerdict({ a: String(now - 45_000), b: String(now - 300_000) }, now, 30)).toEqual({ verdict: 'fail', detail: 'none alive: last heartbeat 45 s ago' });
  });

  it('with no heartbeat at all, says no worker reports now, not that none ever did (stopped workers remove theirs)', () => {
    const { verdict, detail } = workersVerdict({}, now, 30);
    expect(verdict).toBe('fail');
    expect(detail).toBe('no worker is reporting a heartbeat now (one that stops removes its own; one that died is forgotten after 10 min)');
    expect(detail).not.toContain('ever');
  });
});
