import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../harness/free-port';
import { LocalPrometheus, findPrometheus, localPrometheusConfig, writeGeneratedRules } from '../../services/local/prometheus';

/** Stands in for the api or the worker: serves a /metrics page with one of their series. */
async function metricsServer(body: string): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(req.url === '/metrics' ? body : '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const address = (s: Server) => `127.0.0.1:${(s.address() as AddressInfo).port}`;

describe('npm start -- --observe: the local Prometheus', () => {
  it('scrapes the api and the worker under the cluster\'s job names, each found in its targets file, and loads the generated rules', () => {
    expect(localPrometheusConfig('/data/targets', '/data/rules')).toEqual({
      global: { scrape_interval: '15s', evaluation_interval: '15s', external_labels: { cluster: 'local' } },
      rule_files: ['/data/rules/*.yaml'],
      scrape_configs: [
        { job_name: 'api', metrics_path: '/metrics', file_sd_configs: [{ files: ['/data/targets/api.json'] }] },
        { job_name: 'worker', metrics_path: '/metrics', file_sd_configs: [{ files: ['/data/targets/worker.json'] }] },
      ],
    });
  });

  it('runs Debian\'s prometheus with those rules, sees both targets up, evaluates the alerts and follows a worker restarted on another port', async () => {
    if (!findPrometheus()) throw new Error('prometheus is not installed: apt-get install --no-install-recommends prometheus (.ci/run does this)');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pk-local-prometheus-'));
    const api = await metricsServer('http_request_duration_seconds_count{route="/v1/jobs",status="200",method="GET"} 10\n');
    const workerSeries = 'platform_queue_oldest_job_age_seconds 5\nplatform_redis_up 1\n';
    const worker = await metricsServer(workerSeries);
    let restarted: Server | undefined;
    const prometheus = new LocalPrometheus({ port: await findFreePort(), dir, targets: { api: address(api), worker: address(worker) }, interval: '1s' });
    try {
      expect((await writeGeneratedRules(path.join(dir, 'generated'))).length).toBeGreaterThanOrEqual(5);
      await prometheus.start();
      const get = async <T>(p: string) => ((await (await fetch(`${prometheus.url}${p}`)).json()) as { data: T }).data;
      type Targets = { activeTargets: { labels: { job: string; instance: string }; health: string }[] };
      const upTargets = async (expected: string[]) => {
        let up: string[] = [];
        for (let i = 0; i < 100; i++) {
          const targets = await get<Targets>('/api/v1/targets');
          up = targets.activeTargets.filter((t) => t.health === 'up').map((t) => `${t.labels.job} ${t.labels.instance}`).sort();
          if (JSON.stringify(up) === JSON.stringify(expected)) break;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        return up;
      };
      expect(await upTargets([`api ${address(api)}`, `worker ${address(worker)}`])).toEqual([`api ${address(api)}`, `worker ${address(worker)}`]);
      const rules = await get<{ groups: { name: string; rules: { name: string; health: string; type: string }[] }[] }>('/api/v1/rules');
      expect(rules.groups.map((g) => g.name)).toEqual(expect.arrayContaining(['platform-symptoms', 'platform-slo-api-availability']));
      expect(rules.groups.flatMap((g) => g.rules).filter((r) => r.type === 'alerting').length).toBeGreaterThanOrEqual(18);
      // The page the local run links to is one this build serves (Debian's has only the classic UI), and it lists the alerts.
      const alertsPage = await prometheus.alertsPage();
      const page = await fetch(alertsPage);
      expect({ url: alertsPage, status: page.status }).toEqual({ url: expect.stringMatching(/\/alerts$/), status: 200 });
      expect(await page.text()).toContain('WorkerAbsent');

      // The local run restarts a crashed worker on whatever metrics port is free then.
      const closed = new Promise((resolve) => worker.close(resolve));
      worker.closeAllConnections();
      await closed;
      restarted = await metricsServer(workerSeries);
      await prometheus.retarget('worker', address(restarted));
      expect(await upTargets([`api ${address(api)}`, `worker ${address(restarted)}`])).toEqual([`api ${address(api)}`, `worker ${address(restarted)}`]);
    } finally {
      await prometheus.stop();
      await new Promise((resolve) => api.close(resolve));
      if (worker.listening) await new Promise((resolve) => worker.close(resolve));
      if (restarted) await new Promise((resolve) => restarted?.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
