import { WORKER_HEARTBEAT_FORGET_MS } from '../../contract';
import { describeUnknownMigrations, migrationLedger } from '../../core/db/migrate';
import { countDeadLetters } from '../../core/db/jobs';
import { flowSnapshot, readClockSkew, type ClockReading, type FlowSnapshot } from '../../core/db/operations';
import { SUBMIT_START_MARGIN_MS } from '../../core/jobs/submit';
import type { Runtime } from '../../core/runtime';
import { workerHeartbeatKey } from '../../core/queue/keys';
import { withTimeout } from '../../core/timeout';
import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { kubeClient } from '../kube';
import { UsageError, printJson, printTable, shownArgument } from '../output';
import type { CheckResult, Verdict } from './check-result';
import { diagnoseCluster } from './doctor-cluster';

export interface DoctorOptions {
  json?: boolean;
  workerTimeout?: string;
  maxQueueAge?: string;
  maxRelayLag?: string;
}

/** The doctor's limits, in seconds, from its flags. */
export interface DoctorThresholds {
  workerTimeout: number;
  maxQueueAge: number;
  maxRelayLag: number;
}

export function doctorThresholds(options: DoctorOptions): DoctorThresholds {
  return {
    workerTimeout: parse.seconds('--worker-timeout', options.workerTimeout, 30),
    maxQueueAge: parse.seconds('--max-queue-age', options.maxQueueAge, 300),
    maxRelayLag: parse.seconds('--max-relay-lag', options.maxRelayLag, 60),
  };
}

/**
 * How long each of the doctor's reads (a query, a Redis command, a GET of Prometheus) may
 * take before its check reports the dependency as not answering. The reachability checks
 * themselves (core.checks) keep their own, shorter deadline.
 */
const READ_TIMEOUT_MS = 5_000;

const timeLimited = <T>(work: Promise<T>): Promise<T> => withTimeout(work, READ_TIMEOUT_MS, `no answer within ${READ_TIMEOUT_MS / 1_000} s`);

/** PostgreSQL's undefined_column and undefined_table: what a query of this release meets on a schema its migrations have not reached. */
function isMissingFromSchema(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '42703' || code === '42P01';
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A submit's INSERT names the latest time PostgreSQL may start it, on this host's clock,
 * SUBMIT_START_MARGIN_MS before the submit stops waiting. A database clock ahead by about
 * that margin refuses every submit (503); one behind by it lets a submit refused during a
 * hang be written when the server resumes. Half the margin already fails the check.
 */
export function clockVerdict(reading: ClockReading): { verdict: Verdict; detail: string } {
  const off = Math.abs(reading.skewMs);
  if (!Number.isFinite(off)) return { verdict: 'warn', detail: "could not read PostgreSQL's clock" };
  const way = reading.skewMs > 0 ? 'ahead of' : 'behind';
  const measured = `PostgreSQL's clock is ${off.toFixed(0)} ms ${way} this host's (±${reading.uncertaintyMs.toFixed(0)} ms)`;
  if (off - reading.uncertaintyMs > SUBMIT_START_MARGIN_MS / 2)
    return { verdict: 'fail', detail: `${measured}: submits carry a start deadline with a ${SUBMIT_START_MARGIN_MS} ms margin; fix time sync (NTP) on the database or the nodes` };
  if (off > 100) return { verdict: 'warn', detail: `${measured}; check time sync (NTP)` };
  return { verdict: 'ok', detail: `within ${Math.max(off, reading.uncertaintyMs).toFixed(0)} ms of this host's` };
}

/**
 * What the heartbeat hash (workerId → ms since the epoch) says about the workers. It only
 * holds workers running now and workers that died within WORKER_HEARTBEAT_FORGET_MS: one that
 * stops cleanly deletes its heartbeat. So an empty hash says no worker is reporting now, not
 * that none ever did, and when the last one stopped is not known.
 */
export function workersVerdict(heartbeats: Record<string, string>, now: number, workerTimeoutSeconds: number): { verdict: Verdict; detail: string } {
  const ages = Object.values(heartbeats).map((beat) => (now - Number(beat)) / 1_000);
  const alive = ages.filter((age) => age <= workerTimeoutSeconds).length;
  if (alive > 0) return { verdict: 'ok', detail: `${alive} alive (heartbeat within ${workerTimeoutSeconds} s)` };
  if (ages.length > 0) return { verdict: 'fail', detail: `none alive: last heartbeat ${Math.min(...ages).toFixed(0)} s ago` };
  return {
    verdict: 'fail',
    detail: `no worker is reporting a heartbeat now (one that stops removes its own; one that died is forgotten after ${WORKER_HEARTBEAT_FORGET_MS / 60_000} min)`,
  };
}

const PAUSED = 'paused: workers take no new jobs; resume with: platform queues resume';

/**
 * Whether queued jobs move. A backlog past `maxQueueAge` is only a warning while workers
 * still record transitions (they drain it, too slowly: more workers help), and a failure once
 * they have recorded none for a minute. On a paused queue neither reading holds: the
 * transitions are the jobs the workers held when it was paused, and more workers would take
 * nothing either, so the pause is named as the reason and the way out.
 */
export function flowVerdict(flow: FlowSnapshot, maxQueueAge: number, paused: boolean): { verdict: Verdict; detail: string } {
  const backlog = `${flow.queued} queued, oldest ${flow.oldestQueuedSeconds.toFixed(0)} s`;
  const sinceTransition = flow.lastWorkerTransitionSeconds;
  if (flow.queued === 0) return { verdict: 'ok', detail: `nothing waiting; ${flow.running} running` };
  if (flow.oldestQueuedSeconds <= maxQueueAge) return { verdict: 'ok', detail: backlog };
  if (paused) return { verdict: 'fail', detail: `jobs are not flowing: ${backlog}, because the queue is paused (workers take no new jobs); resume with: platform queues resume` };
  if (sinceTransition !== null && sinceTransition <= 60) return { verdict: 'warn', detail: `backlog: ${backlog}, but workers are making progress; consider scaling workers` };
  return { verdict: 'fail', detail: `jobs are not flowing: ${backlog}, no worker transition ${sinceTransition === null ? 'ever' : `for ${sinceTransition.toFixed(0)} s`}` };
}

/**
 * What the checks that need a data store say when its own check failed: it may be down,
 * stopped, refusing the password or unreachable, so what they would have found is unknown.
 */
const NOT_CHECKED = {
  postgres: 'not checked: PostgreSQL failed its check (above)',
  redis: 'not checked: Redis failed its check (above)',
} as const;

/**
 * One verdict on the platform: each check says ok, warn or fail and why, in the order an
 * operator would investigate. Checks that need an unreachable dependency fail with that
 * reason instead of hanging.
 */
export async function diagnose(core: Runtime, { workerTimeout, maxQueueAge, maxRelayLag }: DoctorThresholds): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (check: string, verdict: Verdict, detail: string) => results.push({ check, verdict, detail });

  const postgresUp = await core.checks.postgres().then(
    () => (add('postgres', 'ok', 'reachable'), true),
    (error: unknown) => (add('postgres', 'fail', `failed: ${message(error)}`), false),
  );
  const redisUp = await core.checks.redis().then(
    () => (add('redis', 'ok', 'reachable'), true),
    (error: unknown) => (add('redis', 'fail', `failed: ${message(error)}`), false),
  );
  // With the credentials of where it runs: in the cloud, the api pod's (`kubectl exec deploy/api`).
  await timeLimited(core.store.check()).then(
    () => add('object-store', 'ok', core.store.driver === 's3' ? 'the uploads and results buckets list keys under the prefix' : 'writes and reads back a probe object'),
    (error: unknown) => add('object-store', 'fail', `failed: ${message(error)}`),
  );

  // Pending migrations leave out what this release reads: checks that read it fail for that reason, not for what they check.
  let schemaBehind = false;
  if (postgresUp) {
    const ledger = await timeLimited(migrationLedger(core.generalPool)).catch((error: unknown) => ({ pending: [`(could not read: ${message(error)})`], unknown: [] }));
    schemaBehind = ledger.pending.length > 0;
    if (schemaBehind) add('migrations', 'fail', `pending: ${ledger.pending.join(', ')}; run: platform migrate`);
    else if (ledger.unknown.length > 0) add('migrations', 'warn', describeUnknownMigrations(ledger.unknown));
    else add('migrations', 'ok', 'schema is up to date');
  } else add('migrations', 'fail', NOT_CHECKED.postgres);

  if (postgresUp) {
    await timeLimited(readClockSkew(core.generalPool)).then(
      (reading) => {
        const { verdict, detail } = clockVerdict(reading);
        add('clock', verdict, detail);
      },
      (error: unknown) => add('clock', 'warn', `could not read PostgreSQL's clock: ${message(error)}`),
    );
  } else add('clock', 'fail', NOT_CHECKED.postgres);

  // Known only when Redis answers; the flow check names a pause as the reason jobs wait.
  let paused: boolean | undefined;
  if (redisUp) {
    try {
      const reply = (await timeLimited(core.redis.client.config('GET', 'maxmemory-policy'))) as string[];
      const policy = reply[1];
      if (policy === 'noeviction') add('redis-eviction', 'ok', 'maxmemory-policy noeviction');
      else add('redis-eviction', 'fail', `maxmemory-policy is ${policy}: Redis may evict BullMQ keys and lose jobs; set noeviction`);
    } catch (error) {
      add('redis-eviction', 'warn', `could not read maxmemory-policy (${message(error)}); make sure it is noeviction`);
    }

    await timeLimited(core.redis.client.hgetall(workerHeartbeatKey(core.env.QUEUE_PREFIX))).then(
      (heartbeats) => {
        const { verdict, detail } = workersVerdict(heartbeats, Date.now(), workerTimeout);
        add('workers', verdict, detail);
      },
      (error: unknown) => add('workers', 'fail', `could not read the workers' heartbeats: ${message(error)}`),
    );

    paused = await timeLimited(core.relay.queue.isPaused()).then(
      (isPaused) => (add('queue', isPaused ? 'warn' : 'ok', isPaused ? PAUSED : 'not paused'), isPaused),
      (error: unknown) => (add('queue', 'fail', `could not read whether it is paused: ${message(error)}`), undefined),
    );

    try {
      const lag = await timeLimited(core.relay.measureLagSeconds());
      if (lag > maxRelayLag) add('relay', 'fail', `oldest accepted job missing from Redis for ${lag.toFixed(0)} s; run: platform reconcile`);
      else add('relay', 'ok', lag > 0 ? `lag ${lag.toFixed(1)} s` : 'every queued job is in Redis');
    } catch (error) {
      add('relay', 'fail', schemaBehind && isMissingFromSchema(error) ? `not checked: the schema lacks what this release reads (pending migrations, above): ${message(error)}` : `could not measure: ${message(error)}`);
    }
  } else {
    for (const check of ['redis-eviction', 'workers', 'queue', 'relay']) add(check, 'fail', NOT_CHECKED.redis);
  }

  if (postgresUp) {
    try {
      const { verdict, detail } = flowVerdict(await timeLimited(flowSnapshot(core.generalPool)), maxQueueAge, paused === true);
      add('flow', verdict, detail);

      const deadLetters = await timeLimited(countDeadLetters(core.generalPool));
      if (deadLetters === 0) add('dead-letters', 'ok', 'empty');
      else add('dead-letters', 'warn', `${deadLetters} job(s) failed for good; inspect: platform dlq list`);
    } catch (error) {
      add('flow', 'fail', `could not read: ${message(error)}`);
    }
  } else {
    for (const check of ['flow', 'dead-letters']) add(check, 'fail', NOT_CHECKED.postgres);
  }
  return results;
}

export function doctor(options: DoctorOptions): RuntimeAction {
  const thresholds = doctorThresholds(options);
  return async (core) => report(await diagnose(core, thresholds), options);
}

export interface StackDoctorOptions extends DoctorOptions {
  stack: string;
  kubeApi?: string;
  prometheusUrl?: string;
}

async function fetchJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return (await res.json()) as T;
}

/**
 * `platform doctor --stack <s>`: what the stack adds to the cluster (see doctor-cluster),
 * then, where the data stores are reachable (inside the cluster, where RDS and Redis admit
 * the CLI), the platform's own checks. Its flags are checked here; the returned command
 * finds the cluster (from the pod, or --kube-api) when it runs.
 */
export function doctorStack(options: StackDoctorOptions, withRuntime: <T>(action: (core: Runtime) => Promise<T>) => Promise<T>): () => Promise<number> {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(options.stack)) throw new UsageError(`--stack must be a stack name such as prod, got ${shownArgument(options.stack)}`);
  if (options.prometheusUrl !== undefined && !/^https?:\/\/\S+$/.test(options.prometheusUrl)) throw new UsageError('--prometheus-url must be an http(s) URL');
  const thresholds = doctorThresholds(options);
  return async () => {
    const kube = kubeClient(options.kubeApi === undefined ? {} : { server: options.kubeApi });
    const results = await diagnoseCluster(kube, { stack: options.stack, ...(options.prometheusUrl ? { prometheusUrl: options.prometheusUrl, fetchJson } : {}) });
    if (process.env.DATABASE_URL && process.env.REDIS_URL) results.push(...(await withRuntime((core) => diagnose(core, thresholds))));
    else results.push({ check: 'platform', verdict: 'warn', detail: 'DATABASE_URL and REDIS_URL are not set here, so PostgreSQL, Redis, workers and the queue were not checked: run it in the cluster (kubectl exec deploy/api -- platform doctor --stack <s>)' });
    return report(results, options);
  };
}

function report(results: CheckResult[], options: DoctorOptions): number {
  const healthy = results.every((result) => result.verdict !== 'fail');
  if (options.json) printJson({ healthy, checks: results });
  else {
    printTable(results, ['check', 'verdict', 'detail']);
    process.stdout.write(`\n${healthy ? 'healthy' : 'UNHEALTHY'}\n`);
  }
  return healthy ? 0 : 1;
}
