import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { backlogQuery } from '../../../services/contract';
import { BACKLOG_QUERY_SHAPE } from '../../../services/cli/commands/doctor-cluster';
import { MIGRATION_LOCK_KEY } from '../../../services/core/db/migrate';
import { createEngineFixture, waitFor, type EngineFixture } from '../engine/fixture';
import { platform } from './platform-cli';

const GROUPS = ['platform-slo-api-availability', 'platform-symptoms'];
const ALERTS = ['ApiAvailabilityFastBurn', 'WorkerAbsent'];

interface ScaledObject {
  metadata: { name: string };
  spec: { scaleTargetRef: { name: string }; minReplicaCount?: number; triggers: { type: string; metadata: Record<string, string> }[] };
}

/** A cluster as the API server answers for it: what the observability stack and the workloads leave there. */
function healthyCluster() {
  return {
    record: { stack: 'prod', appNamespace: 'platform', monitoringNamespace: 'monitoring', prometheusService: 'monitoring-prometheus', prometheusPort: 9090, ruleGroups: GROUPS, alerts: ALERTS },
    crds: new Set(['servicemonitors.monitoring.coreos.com', 'podmonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com', 'prometheuses.monitoring.coreos.com', 'alertmanagers.monitoring.coreos.com', 'scaledobjects.keda.sh']),
    // The trigger platform/workloads deploys: the backlog counted in PostgreSQL.
    scaledObjects: [{ metadata: { name: 'worker' }, spec: { scaleTargetRef: { name: 'worker' }, minReplicaCount: 1, triggers: [{ type: 'postgresql', metadata: { query: backlogQuery(50) } }] } }] as ScaledObject[],
    prometheusRules: GROUPS,
    loaded: GROUPS.map((name, i) => ({ name, rules: [{ name: ALERTS[i], type: 'alerting', health: 'ok' }] })),
    targets: [{ labels: { job: 'api' }, health: 'up' }, { labels: { job: 'worker' }, health: 'up' }],
    alertmanagers: 2,
  };
}
type Cluster = ReturnType<typeof healthyCluster>;

/** A fake Kubernetes API server (as `kubectl proxy` serves it), Prometheus behind its service proxy. */
async function fakeApiServer(cluster: () => Cluster): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const c = cluster();
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const p = url.pathname;
    const proxy = '/api/v1/namespaces/monitoring/services/http:monitoring-prometheus:9090/proxy';
    if (p === '/version') return send(200, { gitVersion: 'v1.33.2-eks-1' });
    if (p === '/api/v1/namespaces/monitoring/configmaps/platform-kit-observability') return send(200, { data: { 'stack.json': JSON.stringify(c.record) } });
    const crd = /^\/apis\/apiextensions\.k8s\.io\/v1\/customresourcedefinitions\/(.+)$/.exec(p);
    if (crd) return c.crds.has(crd[1] as string) ? send(200, { metadata: { name: crd[1] } }) : send(404, { message: `customresourcedefinitions "${crd[1]}" not found` });
    if (p === '/apis/keda.sh/v1alpha1/namespaces/platform/scaledobjects') return send(200, { items: c.scaledObjects });
    if (p === '/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheusrules') {
      expect(url.searchParams.get('labelSelector')).toBe('platform-kit.io/rules=true');
      return send(200, { items: c.prometheusRules.map((name) => ({ metadata: { name } })) });
    }
    if (p === `${proxy}/api/v1/rules`) return send(200, { status: 'success', data: { groups: c.loaded } });
    if (p === `${proxy}/api/v1/targets`) return send(200, { status: 'success', data: { activeTargets: c.targets } });
    if (p === `${proxy}/api/v1/alertmanagers`) return send(200, { status: 'success', data: { activeAlertmanagers: Array(c.alertmanagers).fill({ url: 'http://am:9093' }) } });
    send(404, { message: `no route ${p}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface DoctorJson {
  healthy: boolean;
  checks: { check: string; verdict: string; detail: string }[];
}

describe('platform doctor --stack (against the Kubernetes API)', () => {
  let cluster: Cluster;
  let api: { url: string; server: Server };
  beforeAll(async () => {
    api = await fakeApiServer(() => cluster);
  });
  afterAll(() => new Promise<void>((resolve) => api.server.close(() => resolve())));
  beforeEach(() => {
    cluster = healthyCluster();
  });

  const doctor = async (...extra: string[]) => {
    const run = await platform(['doctor', '--stack', 'prod', '--kube-api', api.url, '--json', ...extra], { QUEUE_PREFIX: '{pk}' });
    return { ...run, report: JSON.parse(run.stdout || '{}') as DoctorJson };
  };
  const verdicts = (r: DoctorJson) => Object.fromEntries(r.checks.map((c) => [c.check, c.verdict]));

  it('passes a cluster that has everything the stack adds, and says the data plane was not checked from outside', async () => {
    const { code, report } = await doctor();
    expect(verdicts(report)).toEqual({
      cluster: 'ok',
      stack: 'ok',
      crds: 'ok',
      scaler: 'ok',
      'rules-shipped': 'ok',
      'rules-loaded': 'ok',
      'scrape-api': 'ok',
      'scrape-worker': 'ok',
      alertmanager: 'ok',
      platform: 'warn',
    });
    expect(code).toBe(0);
    expect(report.healthy).toBe(true);
  });

  it('fails on another stack\'s cluster, missing CRDs, a scaler on the wrong list, rules Prometheus did not load', async () => {
    cluster.record.stack = 'dev';
    cluster.crds.delete('prometheusrules.monitoring.coreos.com');
    cluster.scaledObjects = [{ metadata: { name: 'worker' }, spec: { scaleTargetRef: { name: 'worker' }, minReplicaCount: 1, triggers: [{ type: 'redis', metadata: { listName: 'bull:jobs:wait' } }] } }];
    cluster.loaded = cluster.loaded.slice(0, 1);
    cluster.alertmanagers = 0;
    const { code, report } = await doctor();
    expect(code).toBe(1);
    const detail = Object.fromEntries(report.checks.map((c) => [c.check, `${c.verdict}: ${c.detail}`]));
    expect(detail.stack).toBe('fail: this cluster runs stack dev, not prod: check your kube context');
    expect(detail.crds).toBe('fail: missing: prometheusrules.monitoring.coreos.com');
    expect(detail.scaler).toBe(`fail: worker: redis trigger reads list bull:jobs:wait, which under-counts the backlog (prioritized, delayed and not-yet-relayed jobs are in no list): scale on PostgreSQL (${BACKLOG_QUERY_SHAPE})`);
    expect(detail['rules-loaded']).toBe('fail: Prometheus has not loaded platform-symptoms (check its ruleSelector)');
    expect(detail.alertmanager).toMatch(/^fail: Prometheus knows no Alertmanager/);
  });

  it('accepts a Prometheus scaler on the contract\'s queue depth, and reports rules that do not evaluate', async () => {
    cluster.scaledObjects = [{ metadata: { name: 'worker' }, spec: { scaleTargetRef: { name: 'worker' }, minReplicaCount: 1, triggers: [{ type: 'prometheus', metadata: { query: 'sum(platform_queue_depth{state=~"waiting|prioritized"})' } }] } }];
    cluster.loaded = [{ name: GROUPS[0] as string, rules: [{ name: 'ApiAvailabilityFastBurn', type: 'alerting', health: 'err', lastError: 'many-to-many matching' } as never] }, cluster.loaded[1] as never];
    const { report } = await doctor();
    expect(verdicts(report).scaler).toBe('ok');
    expect(report.checks.find((c) => c.check === 'rules-loaded')?.detail).toBe('rules failing to evaluate: ApiAvailabilityFastBurn: many-to-many matching');
  });

  it('refuses a Redis scaler even on the queue\'s own wait list, a PostgreSQL scaler counting something else and a fleet that may scale to zero', async () => {
    cluster.scaledObjects = [{ metadata: { name: 'worker' }, spec: { scaleTargetRef: { name: 'worker' }, minReplicaCount: 2, triggers: [{ type: 'redis', metadata: { listName: '{pk}:jobs:wait' } }] } }];
    expect(verdicts((await doctor()).report).scaler).toBe('fail');
    cluster.scaledObjects = [{ metadata: { name: 'worker' }, spec: { scaleTargetRef: { name: 'worker' }, minReplicaCount: 1, triggers: [{ type: 'postgresql', metadata: { query: 'SELECT count(*) FROM jobs' } }] } }];
    expect(Object.fromEntries((await doctor()).report.checks.map((c) => [c.check, c.detail])).scaler).toBe(`worker: postgresql trigger counts "SELECT count(*) FROM jobs", not the backlog (${BACKLOG_QUERY_SHAPE})`);
    // KEDA's default minimum is 0: a ScaledObject without one scales the workers away too.
    for (const spec of [{ minReplicaCount: 0 }, {}]) {
      cluster.scaledObjects = [{ metadata: { name: 'worker' }, spec: { scaleTargetRef: { name: 'worker' }, ...spec, triggers: [{ type: 'postgresql', metadata: { query: backlogQuery(50) } }] } }];
      const { code, report } = await doctor();
      expect(code).toBe(1);
      expect(report.checks.find((c) => c.check === 'scaler')).toEqual({ check: 'scaler', verdict: 'fail', detail: expect.stringMatching(/\(min 0\): idle workers scale away, so WorkerAbsent pages.*platform-kit:app\.worker\.replicas\.min/) });
    }
  });

  it('refuses bad usage before reaching anything', async () => {
    expect((await platform(['doctor', '--kube-api', api.url], {})).code).toBe(2);
    const outside = await platform(['doctor', '--stack', 'prod'], {});
    expect(outside.code).toBe(2);
    expect(outside.stderr).toContain('pass --kube-api');
    expect((await platform(['doctor', '--stack', 'Prod!', '--kube-api', api.url], {})).stderr).toContain('--stack must be a stack name');
  });
});

describe('platform db locks / cancel (a stuck migration)', () => {
  let fixture: EngineFixture;
  let holder: Client;
  let waiter: Client;
  beforeAll(async () => {
    fixture = await createEngineFixture();
    holder = new Client({ connectionString: fixture.env.DATABASE_URL, application_name: 'migration-holder' });
    waiter = new Client({ connectionString: fixture.env.DATABASE_URL, application_name: 'blocked-migration' });
    await holder.connect();
    await waiter.connect();
  });
  afterAll(async () => {
    await holder?.end();
    await waiter?.end();
    await fixture?.close();
  });

  it('shows who holds the migration lock and who waits behind whom, and cancels the waiter', async () => {
    await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE');
    const waiterPid = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
    const blocked = waiter.query('ALTER TABLE jobs ADD COLUMN never_added integer').then(
      () => 'applied',
      (error: Error) => error.message,
    );
    const env = { DATABASE_URL: fixture.env.DATABASE_URL, REDIS_URL: fixture.env.REDIS_URL, QUEUE_PREFIX: fixture.env.QUEUE_PREFIX, LOG_LEVEL: 'error' };
    const locks = await waitFor('the ALTER to wait', async () => {
      const run = await platform(['db', 'locks', '--json'], env);
      const sessions = (JSON.parse(run.stdout) as { sessions: { pid: number; holds_migration_lock: boolean; blocked_by: number[]; application: string }[] }).sessions;
      return sessions.some((s) => s.pid === waiterPid && s.blocked_by.length > 0) ? sessions : undefined;
    });
    const holderRow = locks.find((s) => s.application === 'migration-holder');
    expect(holderRow?.holds_migration_lock).toBe(true);
    expect(locks.find((s) => s.pid === waiterPid)?.blocked_by).toEqual([holderRow?.pid]);

    const cancel = await platform(['db', 'cancel', String(waiterPid)], env);
    expect(cancel.code).toBe(0);
    expect(await blocked).toMatch(/canceling statement due to user request/);
    await holder.query('ROLLBACK');
    await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    expect((await platform(['db', 'cancel', 'abc'], env)).code).toBe(2);
  });

  it('cancels nothing in a session idle in a transaction, says so, and ends it with --terminate', async () => {
    const idle = new Client({ connectionString: fixture.env.DATABASE_URL, application_name: 'idle-lock-holder' });
    idle.on('error', () => undefined);
    await idle.connect();
    try {
      await idle.query('BEGIN');
      await idle.query('LOCK TABLE jobs IN SHARE MODE');
      const pid = (await idle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
      const env = { DATABASE_URL: fixture.env.DATABASE_URL, REDIS_URL: fixture.env.REDIS_URL, QUEUE_PREFIX: fixture.env.QUEUE_PREFIX, LOG_LEVEL: 'error' };
      const text = await platform(['db', 'cancel', String(pid)], env);
      expect({ code: text.code, stdout: text.stdout }).toEqual({
        code: 1,
        stdout: `session ${pid} runs no query (idle in transaction): nothing to cancel; its locks last until it ends: platform db cancel ${pid} --terminate\n`,
      });
      const json = await platform(['db', 'cancel', String(pid), '--json'], env);
      expect(JSON.parse(json.stdout)).toEqual({ pid, action: 'cancel', done: false, found: true, state: 'idle in transaction' });
      // Still there, lock and all.
      expect(await fixture.query("SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE l.pid = $1 AND c.relname = 'jobs' AND l.granted", [pid])).toHaveLength(1);

      const terminated = await platform(['db', 'cancel', String(pid), '--terminate'], env);
      expect({ code: terminated.code, stdout: terminated.stdout }).toEqual({ code: 0, stdout: `terminated session ${pid}\n` });
      await waitFor('the session to end', async () => (await fixture.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 0);
    } finally {
      await idle.end().catch(() => undefined);
    }
  });

  it("leaves PostgreSQL's own processes alone: a mistyped pid ended the logical replication launcher", async () => {
    const env = { DATABASE_URL: fixture.env.DATABASE_URL, REDIS_URL: fixture.env.REDIS_URL, QUEUE_PREFIX: fixture.env.QUEUE_PREFIX, LOG_LEVEL: 'error' };
    const { pid } = await fixture.one<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'logical replication launcher'");
    const run = await platform(['db', 'cancel', String(pid), '--terminate', '--json'], env);
    expect({ code: run.code, answer: JSON.parse(run.stdout) }).toEqual({ code: 1, answer: { pid, action: 'terminate', done: false, found: true, backendType: 'logical replication launcher' } });
    const text = await platform(['db', 'cancel', String(pid)], env);
    expect({ code: text.code, stdout: text.stdout }).toEqual({ code: 1, stdout: `${pid} is PostgreSQL's own logical replication launcher, not a client's session: left alone\n` });
    expect(await fixture.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).toHaveLength(1);
  });
});
