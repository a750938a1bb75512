import { RateLimiterRes } from 'rate-limiter-flexible';
import { LeasedPoints, type Limiter } from '../../../services/api/middleware/rate-limit';

/**
 * A fixed-window store that behaves as Redis does at a window's end: for a few milliseconds
 * after the window's nominal end it still counts into that window and reports 0 ms left
 * (PTTL 0), then starts a new one.
 */
class TurningWindowStore implements Pick<Limiter, 'consume'> {
  calls = 0;
  private count = 0;

  constructor(
    private readonly points: number,
    private readonly windowMs: number,
    private readonly lingerMs: number,
    private endsAt: number,
  ) {}

  async consume(_key: string | number, points = 1): Promise<RateLimiterRes> {
    this.calls += 1;
    const now = Date.now();
    if (now >= this.endsAt + this.lingerMs) {
      this.count = 0;
      this.endsAt = now + this.windowMs;
    }
    this.count += points;
    const answer = new RateLimiterRes(Math.max(0, this.points - this.count), Math.max(0, this.endsAt - now), this.count, false);
    if (this.count > this.points) throw answer;
    return answer;
  }
}

function leasedPoints(store: TurningWindowStore, leaseSize: number): LeasedPoints {
  return new LeasedPoints(store as unknown as Limiter, leaseSize);
}

describe('leased points at the turn of a window', () => {
  it('waits for a window in its last moment to turn instead of leasing it dry and refusing a key far under its limit', async () => {
    // Limit 100, leases of 5: the window ends now and still counts for 3 ms.
    const store = new TurningWindowStore(100, 1_000, 3, Date.now());
    const points = leasedPoints(store, 5);

    await expect(points.consume('user')).resolves.toBeUndefined();
    // Not twenty leases into the dying window: a few asks while it turned, then one lease in the new window.
    expect(store.calls).toBeLessThanOrEqual(8);
    const callsAfterFirst = store.calls;
    for (let request = 0; request < 4; request += 1) await points.consume('user');
    expect(store.calls).toBe(callsAfterFirst);
  });

  it('asks the next window when the store refuses in the last moments of the current one', async () => {
    const store = new TurningWindowStore(10, 1_000, 0, Date.now() + 1_000);
    const points = leasedPoints(store, 5);
    for (let request = 0; request < 10; request += 1) await points.consume('user');
    // The window is spent (two leases of 5) and now ends in 5 ms: the next request waits for the one after it.
    (store as unknown as { endsAt: number }).endsAt = Date.now() + 5;
    await expect(points.consume('user')).resolves.toBeUndefined();
  });

  it('still refuses a key over its limit while the window has more than a moment to run', async () => {
    const store = new TurningWindowStore(10, 60_000, 0, Date.now() + 60_000);
    const points = leasedPoints(store, 5);
    for (let request = 0; request < 10; request += 1) await points.consume('user');
    const refusal = await points.consume('user').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(RateLimiterRes);
    expect((refusal as RateLimiterRes).msBeforeNext).toBeGreaterThan(50_000);
  });
});

describe('leased points of more than one point a charge', () => {
  it('takes a charge from the lease while it covers it, and a new lease when it does not', async () => {
    const store = new TurningWindowStore(100, 60_000, 0, Date.now() + 60_000);
    const points = leasedPoints(store, 10);
    await points.consume('user', 4);
    await points.consume('user', 4);
    expect(store.calls).toBe(1);
    // 2 left of the lease: the next charge of 4 takes a lease of its own.
    await points.consume('user', 4);
    expect(store.calls).toBe(2);
  });

  it('asks the store for a charge larger than a lease as it is, and refuses one past the window', async () => {
    const store = new TurningWindowStore(100, 60_000, 0, Date.now() + 60_000);
    const points = leasedPoints(store, 10);
    await points.consume('user', 60);
    expect(store.calls).toBe(1);
    await expect(points.consume('user', 60)).rejects.toBeInstanceOf(RateLimiterRes);
  });
});
