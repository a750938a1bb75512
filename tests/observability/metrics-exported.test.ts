/**
 * Every metric a dashboard or an alert rule names is one the services export, with the
 * labels the rules filter on: the api and a worker run for real (over the harness's
 * PostgreSQL and Redis), take some traffic, and their /metrics are read. A metric renamed
 * or dropped in services/ fails here, not silently in a dashboard.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SCRAPE_TARGETS } from '../../services/contract';
import { startApiProcess, type ApiProcess } from '../../services/api/main';
import { startWorkerProcess, type WorkerProcess } from '../../services/worker/main';
import { platformDashboards } from '../../platform/observability/dashboards';
import { platformRuleGroups } from '../../platform/observability/rules';
import { findFreePort } from '../harness/free-port';
import { useSharedServices } from '../harness/shared';
import { testEnv, waitFor } from '../services/engine/fixture';

interface Selector {
  metric: string;
  labels: string[];
  /** The scrape jobs the selector allows (`job="worker"`, `job=~"api|worker"`); both when it names none. */
  jobs: ('api' | 'worker')[];
  where: string;
}

/** `metric{label="…",…}` occurrences in a PromQL expression (recorded `a:b:c` series and `up` excluded). */
export function selectorsIn(expr: string, where: string): Selector[] {
  const out: Selector[] = [];
  const re = /([a-zA-Z_][a-zA-Z0-9_:]*)\{([^}]*)\}/g;
  for (let m = re.exec(expr); m !== null; m = re.exec(expr)) {
    const metric = m[1] as string;
    if (metric.includes(':') || metric === 'up') continue;
    const labels = [...(m[2] as string).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] as string).filter((l) => l !== 'job');
    const job = /job=~?"([^"]*)"/.exec(m[2] as string)?.[1];
    const jobs = (['api', 'worker'] as const).filter((j) => job === undefined || new RegExp(`^(?:${job})$`).test(SCRAPE_TARGETS[j].job));
    out.push({ metric, labels, jobs, where });
  }
  return out;
}

function dashboardExprs(): { expr: string; where: string }[] {
  const out: { expr: string; where: string }[] = [];
  for (const d of platformDashboards()) {
    for (const panel of (d.panels ?? []) as { title?: string; datasource?: { type?: string }; targets?: { expr?: string }[] }[]) {
      if (panel.datasource?.type !== 'prometheus') continue;
      for (const t of panel.targets ?? []) if (t.expr) out.push({ expr: t.expr, where: `dashboard ${d.uid} / ${panel.title ?? ''}` });
    }
  }
  return out;
}

/** Metric families (`# TYPE name kind`) and the label names seen on each sample name. */
function parseExposition(text: string): { families: Map<string, string>; sampleLabels: Map<string, Set<string>> } {
  const families = new Map<string, string>();
  const sampleLabels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) families.set(type[1] as string, type[2] as string);
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!sample || line.startsWith('#')) continue;
    const labels = sampleLabels.get(sample[1] as string) ?? new Set<string>();
    for (const l of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1] as string);
    sampleLabels.set(sample[1] as string, labels);
  }
  return { families, sampleLabels };
}

/** The family a sample name belongs to (`x_bucket` → `x` when `x` is a histogram). */
function familyOf(name: string, families: Map<string, string>): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|count|sum)$/, '');
  return families.get(base) === 'histogram' || families.get(base) === 'summary' ? base : undefined;
}

describe('metrics named by the dashboards and rules', () => {
  let api: ApiProcess;
  let worker: WorkerProcess;
  let objectDir: string;
  let exposition: Record<'api' | 'worker', string>;
  let concurrency: number;

  beforeAll(async () => {
    const servers = await useSharedServices();
    objectDir = await mkdtemp(path.join(os.tmpdir(), 'pk-metrics-objects-'));
    const [port, metricsPort] = [await findFreePort(), await findFreePort()];
    const env = testEnv({ ...servers, objectDir }, { PORT: String(port), WORKER_METRICS_PORT: String(metricsPort), SERVICE_NAME: 'metrics-test' });
    concurrency = env.WORKER_CONCURRENCY;
    api = await startApiProcess(env, { exitOnSignal: false });
    worker = await startWorkerProcess(env, { exitOnSignal: false, refreshMs: 200 });

    const base = `http://127.0.0.1:${api.port}`;
    const json = (body: unknown, token?: string) => ({ method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    await fetch(`${base}/healthz`);
    await fetch(`${base}/v1/no-such-route`);
    const credentials = { email: `metrics-${Date.now()}@example.com`, password: 'correct horse battery staple' };
    await fetch(`${base}/v1/auth/register`, json(credentials));
    const { accessToken } = (await (await fetch(`${base}/v1/auth/login`, json(credentials))).json()) as { accessToken: string };
    const submitted = (await (await fetch(`${base}/v1/jobs`, json({ type: 'echo', input: { payload: 'observe' } }, accessToken))).json()) as { id: string };
    const sleeper = (await (await fetch(`${base}/v1/jobs`, json({ type: 'sleep', input: { ms: 60_000 } }, accessToken))).json()) as { id: string };
    await waitFor('the echo job to succeed', async () => {
      const job = (await (await fetch(`${base}/v1/jobs/${submitted.id}`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as { status: string };
      return job.status === 'succeeded';
    });
    await fetch(`${base}/v1/jobs/${sleeper.id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } });
    // Let the worker's refresh publish queue depth and the data-store gauges.
    await new Promise((resolve) => setTimeout(resolve, 600));
    exposition = {
      api: await (await fetch(`${base}/metrics`)).text(),
      worker: await (await fetch(`http://127.0.0.1:${worker.health.port}/metrics`)).text(),
    };
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
    if (objectDir) await rm(objectDir, { recursive: true, force: true });
  });

  const selectors = (): Selector[] => [
    ...platformRuleGroups({ runbookBaseUrl: 'https://example.com/runbooks' }).flatMap((g) => g.rules.flatMap((r) => selectorsIn(r.expr, `rule ${'alert' in r ? r.alert : r.record}`))),
    ...dashboardExprs().flatMap((e) => selectorsIn(e.expr, e.where)),
  ];

  it('finds selectors to check in both the rules and the dashboards', () => {
    const all = selectors();
    expect(all.filter((s) => s.where.startsWith('rule')).length).toBeGreaterThan(20);
    expect(all.filter((s) => s.where.startsWith('dashboard')).length).toBeGreaterThan(20);
  });

  it('exports every metric they name, from the scrape job they select', () => {
    const parsed = { api: parseExposition(exposition.api), worker: parseExposition(exposition.worker) };
    const missing: string[] = [];
    for (const s of selectors()) {
      const exported = s.jobs.filter((j) => familyOf(s.metric, parsed[j].families) !== undefined);
      if (exported.length === 0) missing.push(`${s.metric} from job ${s.jobs.join('|')} (${s.where})`);
    }
    expect([...new Set(missing)]).toEqual([]);
  });

  it('exports the labels they filter on, wherever the metric has samples', () => {
    const parsed = { api: parseExposition(exposition.api), worker: parseExposition(exposition.worker) };
    const missing: string[] = [];
    for (const s of selectors()) {
      for (const job of s.jobs) {
        const seen = parsed[job].sampleLabels.get(s.metric);
        if (!seen) continue;
        for (const label of s.labels) if (!seen.has(label)) missing.push(`${s.metric} has no label ${label} on ${job} (${s.where})`);
      }
    }
    expect([...new Set(missing)]).toEqual([]);
  });

  it('serves the SLO events the rules count, from the jobs the rules select them by', () => {
    const api = parseExposition(exposition.api);
    const worker = parseExposition(exposition.worker);
    expect(api.sampleLabels.get('http_request_duration_seconds_count')).toEqual(new Set(['service', 'method', 'route', 'status']));
    expect(worker.sampleLabels.get('platform_jobs_succeeded_total')).toEqual(new Set(['service', 'type']));
    expect(worker.sampleLabels.get('platform_job_time_to_start_seconds_bucket')?.has('le')).toBe(true);
    expect(SCRAPE_TARGETS.api.path).toBe('/metrics');
  });

  it('reads the data stores for real: PostgreSQL connections and their limit, Redis reachable with its memory', () => {
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(exposition.worker)?.[1]);
    expect(value('platform_redis_up')).toBe(1);
    expect(value('platform_redis_memory_used_bytes')).toBeGreaterThan(0);
    expect(value('platform_postgres_max_connections')).toBeGreaterThan(0);
    expect(value('platform_postgres_connections')).toBeGreaterThan(0);
    expect(value('platform_postgres_connections')).toBeLessThanOrEqual(value('platform_postgres_max_connections'));
    expect(value('platform_worker_concurrency')).toBe(concurrency);
    expect(value('platform_queue_oldest_job_age_seconds')).toBeGreaterThanOrEqual(0);
    // Both PostgreSQL pools, the batch one (job-state writes) included.
    for (const pool of ['general', 'batch']) expect(exposition.worker).toMatch(new RegExp(`^platform_db_pool_connections\\{[^}]*pool="${pool}"[^}]*state="total"[^}]*\\} \\d+$`, 'm'));
  });

  it('reports the api\'s PostgreSQL pools as the worker reports its own, for the API dashboard and the connections runbook', () => {
    for (const pool of ['general', 'batch']) {
      for (const state of ['total', 'idle', 'waiting']) {
        expect(exposition.api).toMatch(new RegExp(`^platform_db_pool_connections\\{[^}]*pool="${pool}"[^}]*state="${state}"[^}]*\\} \\d+$`, 'm'));
      }
    }
  });
});
