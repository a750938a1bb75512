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
  it('scrapes the api and the worker under the cluster\'s job names and loads the generated rules', () => {
    expect(localPrometheusConfig({ api: '127.0.0.1:8080', worker: '127.0.0.1:9091' }, '/data/rules')).toEqual({
      global: { scrape_interval: '15s', evaluation_interval: '15s', external_labels: { cluster: 'local' } },
      rule_files: ['/data/rules/*.yaml'],
      scrape_configs: [
        { job_name: 'api', metrics_path: '/metrics', static_configs: [{ targets: ['127.0.0.1:8080'] }] },
        { job_name: 'worker', metrics_path: '/metrics', static_configs: [{ targets: ['127.0.0.1:9091'] }] },
      ],
    });
  });

  it('runs Debian\'s prometheus with those rules, sees both targets up and evaluates the alerts', async () => {
    if (!findPrometheus()) throw new Error('prometheus is not installed: apt-get install --no-install-recommends prometheus (.ci/run does this)');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pk-local-prometheus-'));
    const api = await metricsServer('http_request_duration_seconds_count{route="/v1/jobs",status="200",method="GET"} 10\n');
    const worker = await metricsServer('platform_queue_oldest_job_age_seconds 5\nplatform_redis_up 1\n');
    const prometheus = new LocalPrometheus({ port: await findFreePort(), dir, targets: { api: address(api), worker: address(worker) }, interval: '1s' });
    try {
      expect((await writeGeneratedRules(path.join(dir, 'generated'))).length).toBeGreaterThanOrEqual(5);
      await prometheus.start();
      const get = async <T>(p: string) => ((await (await fetch(`${prometheus.url}${p}`)).json()) as { data: T }).data;
      let up: string[] = [];
      for (let i = 0; i < 100 && up.length < 2; i++) {
        const targets = await get<{ activeTargets: { labels: { job: string }; health: string }[] }>('/api/v1/targets');
        up = targets.activeTargets.filter((t) => t.health === 'up').map((t) => t.labels.job).sort();
        if (up.length < 2) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(up).toEqual(['api', 'worker']);
      const rules = await get<{ groups: { name: string; rules: { name: string; health: string; type: string }[] }[] }>('/api/v1/rules');
      expect(rules.groups.map((g) => g.name)).toEqual(expect.arrayContaining(['platform-symptoms', 'platform-slo-api-availability']));
      expect(rules.groups.flatMap((g) => g.rules).filter((r) => r.type === 'alerting').length).toBeGreaterThanOrEqual(18);
    } finally {
      await prometheus.stop();
      await new Promise((resolve) => api.close(resolve));
      await new Promise((resolve) => worker.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
