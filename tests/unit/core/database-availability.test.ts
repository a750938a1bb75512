import { AggregatorRegistry } from 'prom-client';
import { DatabaseAvailability } from '../../../services/core/db/availability';
import { DatabaseAwayError, DatabaseDeadlineError, isDatabaseUnavailable } from '../../../services/core/db/errors';
import { createLogger } from '../../../services/core/logger';
import { createMetrics } from '../../../services/core/metrics';

const silent = createLogger({ service: 'test', level: 'silent' });

/** A probe the test answers by hand: each call waits until the test says how it went. */
function manualProbe() {
  const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
  return {
    probe: () => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })),
    calls: () => pending.length,
    answer: () => pending.at(-1)?.resolve(),
    fail: () => pending.at(-1)?.reject(new DatabaseDeadlineError()),
  };
}

async function gauge(metrics: ReturnType<typeof createMetrics>): Promise<number | undefined> {
  return (await metrics.postgresAvailable.get()).values[0]?.value;
}

describe('DatabaseAvailability', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('lets requests through until one finds PostgreSQL away, then refuses them with an error the problem handler answers 503', async () => {
    const probe = manualProbe();
    const metrics = createMetrics('api');
    const availability = new DatabaseAvailability({ probe: probe.probe, log: silent, metrics });
    expect(() => availability.assertAvailable()).not.toThrow();
    expect(await gauge(metrics)).toBe(1);

    availability.observe(new DatabaseDeadlineError());
    expect(availability.available).toBe(false);
    expect(await gauge(metrics)).toBe(0);
    let refusal: unknown;
    try {
      availability.assertAvailable();
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(DatabaseAwayError);
    expect(isDatabaseUnavailable(refusal)).toBe(true);
    availability.close();
  });

  it('is not moved by errors that do not say PostgreSQL is away (a statement timeout, a bad row, a bug)', () => {
    const probe = manualProbe();
    const availability = new DatabaseAvailability({ probe: probe.probe, log: silent });
    for (const error of [Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }), Object.assign(new Error('invalid byte'), { code: '22P05' }), new TypeError('x is undefined')]) {
      availability.observe(error);
    }
    expect(availability.available).toBe(true);
    jest.runOnlyPendingTimers();
    expect(probe.calls()).toBe(0);
    availability.close();
  });

  it('probes at once, then every probeEveryMs while the probe fails, and lets requests through on its first answer', async () => {
    const probe = manualProbe();
    const metrics = createMetrics('api');
    const availability = new DatabaseAvailability({ probe: probe.probe, log: silent, metrics, probeEveryMs: 1_000 });
    availability.observe(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    await jest.advanceTimersByTimeAsync(0);
    expect(probe.calls()).toBe(1);

    probe.fail();
    await jest.advanceTimersByTimeAsync(999);
    expect(probe.calls()).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(probe.calls()).toBe(2);
    expect(availability.available).toBe(false);

    probe.answer();
    await jest.advanceTimersByTimeAsync(0);
    expect(availability.available).toBe(true);
    expect(await gauge(metrics)).toBe(1);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(probe.calls()).toBe(2);
    availability.close();
  });

  it('counts a refusal of its own as nothing new, and opens on an answer from elsewhere (the readiness check)', async () => {
    const probe = manualProbe();
    const availability = new DatabaseAvailability({ probe: probe.probe, log: silent });
    availability.observe(new DatabaseDeadlineError());
    await jest.advanceTimersByTimeAsync(0);
    availability.observe(new DatabaseAwayError());
    await jest.advanceTimersByTimeAsync(0);
    expect(probe.calls()).toBe(1);

    availability.answered();
    expect(availability.available).toBe(true);
    // The probe still out answers late: nothing is scheduled after it.
    probe.fail();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(probe.calls()).toBe(1);
    availability.close();
  });

  it('stops probing once closed', async () => {
    const probe = manualProbe();
    const availability = new DatabaseAvailability({ probe: probe.probe, log: silent });
    availability.observe(new DatabaseDeadlineError());
    await jest.advanceTimersByTimeAsync(0);
    availability.close();
    probe.fail();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(probe.calls()).toBe(1);
  });

  it('reads 0 for a pod of several API processes when any one of them refuses (the cluster aggregate takes the least)', async () => {
    const [refusing, well] = [createMetrics('api'), createMetrics('api')];
    refusing.postgresAvailable.set(0);
    well.postgresAvailable.set(1);
    const aggregate = AggregatorRegistry.aggregate([await refusing.registry.getMetricsAsJSON(), await well.registry.getMetricsAsJSON()]);
    expect((await aggregate.getSingleMetric('platform_postgres_available')?.get())?.values.map((sample) => sample.value)).toEqual([0]);
  });
});
