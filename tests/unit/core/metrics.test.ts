import { JOB_TYPES, METRICS } from '../../../services/contract';
import { createMetrics } from '../../../services/core/metrics';

/** Samples of one metric in the exposition text: the label part (`{type="echo"}` or ``) and the value. */
async function samples(metrics: ReturnType<typeof createMetrics>, name: string): Promise<Map<string, number>> {
  const text = await metrics.registry.metrics();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set((m[2] ?? '').replace(/,?service="[^"]*"/, '').replace('{,', '{').replace('{}', ''), Number(m[3]));
  }
  return out;
}

describe('metric definitions', () => {
  // rate() and increase() count only what a series gains after Prometheus first saw it: a
  // series born with its first event hides that event and the rest of its scrape interval.
  it('exports every job type\'s counters and time-to-start histogram at 0 before the first job', async () => {
    const metrics = createMetrics('test');
    const types = Object.keys(JOB_TYPES);
    for (const name of [METRICS.jobsSubmitted, METRICS.jobsStarted, METRICS.jobsSucceeded, METRICS.jobsFailed, METRICS.jobsRetried, METRICS.jobsCancelled]) {
      const got = await samples(metrics, name);
      expect([...got.keys()].sort()).toEqual(types.map((t) => `{type="${t}"}`).sort());
      expect([...got.values()].every((v) => v === 0)).toBe(true);
    }
    const tts = await samples(metrics, `${METRICS.jobTimeToStart}_count`);
    expect(tts.size).toBe(types.length);
    expect((await samples(metrics, `${METRICS.jobTimeToStart}_bucket`)).get(`{le="60",type="echo"}`)).toBe(0);
  });

  // A 0 from a process that has not measured (a worker waiting for Redis, or the api, which
  // never measures these) reads as "no dead letters, no backlog, Redis down".
  it('exports nothing for a data-store reading until it has been measured', async () => {
    const metrics = createMetrics('test');
    const measured = [
      METRICS.deadLetterSize,
      METRICS.queueOldestJobAge,
      METRICS.postgresConnections,
      METRICS.postgresMaxConnections,
      METRICS.redisUp,
      METRICS.redisMemoryUsed,
      METRICS.redisMemoryMax,
    ];
    for (const name of measured) expect(await samples(metrics, name)).toEqual(new Map());
    metrics.deadLetterSize.set(81);
    metrics.redisUp.set(0);
    expect(await samples(metrics, METRICS.deadLetterSize)).toEqual(new Map([['', 81]]));
    expect(await samples(metrics, METRICS.redisUp)).toEqual(new Map([['', 0]]));
  });
});
