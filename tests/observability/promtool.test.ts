import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { alertmanagerConfig } from '../../platform/observability/alertmanager';
import { renderAlerting } from '../../platform/observability/render';
import { alertingRules } from '../../platform/observability/rules';
import { writeRules } from '../../tools/observability/rules';
import { readStackFile } from '../../tools/observability/stack-file';
import { RULE_CASES, type FiringScenario, type Scenario } from './rule-cases';

const run = promisify(execFile);

/** Runs a Prometheus tool; a missing binary fails with the install command, not a skip. */
async function tool(binary: 'promtool' | 'amtool', args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(binary, args, { maxBuffer: 16 * 1024 * 1024 });
    return `${stdout}${stderr}`;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${binary} is not installed: apt-get install --no-install-recommends ${binary === 'promtool' ? 'prometheus' : 'prometheus-alertmanager'} (.ci/run does this)`, { cause: error });
    throw new Error(`${binary} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: error });
  }
}

let out: string;
beforeAll(() => {
  out = mkdtempSync(path.join(os.tmpdir(), 'pk-rules-'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.each(['dev', 'prod'])('the %s stack', (stack) => {
  it('writes rule files that promtool accepts', async () => {
    const dir = path.join(out, stack);
    writeRules(dir, stack);
    const files = readdirSync(path.join(dir, 'rules')).map((f) => path.join(dir, 'rules', f));
    expect(files.length).toBeGreaterThanOrEqual(3);
    const report = await tool('promtool', ['check', 'rules', ...files]);
    expect(report).not.toMatch(/FAILED/);
  });

  it('writes an Alertmanager configuration that amtool accepts', async () => {
    const dir = path.join(out, stack);
    writeRules(dir, stack);
    const report = await tool('amtool', ['check-config', path.join(dir, 'alertmanager.yaml')]);
    expect(report).toMatch(/SUCCESS/);
  });
});

it('accepts the Alertmanager configuration with every receiver integration on', async () => {
  const file = path.join(out, 'alertmanager-all.yaml');
  writeFileSync(file, stringify(alertmanagerConfig({ slack: { pageChannel: '#pages', ticketChannel: '#tickets' }, pagerDuty: true })));
  expect(await tool('amtool', ['check-config', file])).toMatch(/3 receivers/);
});

describe('rule unit tests (promtool test rules)', () => {
  const { config } = readStackFile('prod');
  const groups = renderAlerting(config.observability, new Set()).ruleGroups;
  const alerts = alertingRules(groups);

  it('has a firing and a silent case for every alert, and none for an alert that does not exist', () => {
    expect(Object.keys(RULE_CASES).sort()).toEqual(alerts.map((a) => a.alert).sort());
    for (const c of Object.values(RULE_CASES)) expect(c.silent.length).toBeGreaterThan(0);
  });

  it('fires each alert on its bad history, with its labels and annotations, and stays silent on the healthy ones', async () => {
    const dir = path.join(out, 'unit');
    writeRules(dir, 'prod');
    const group = (scenario: Scenario, alertname: string, expAlerts: unknown[]) => ({
      name: `${alertname} ${expAlerts.length > 0 ? 'fires' : 'stays silent'}`,
      interval: scenario.interval,
      input_series: scenario.series,
      alert_rule_test: [{ eval_time: scenario.at, alertname, exp_alerts: expAlerts }],
    });
    // One test file per rule group and sample spacing: promtool evaluates every rule of its
    // files at every step, so each case loads only the group of its alert, and steps at the
    // spacing of its series (a burn over days needs no finer steps than its samples).
    const files = new Map<string, { ruleFile: string; interval: string; tests: ReturnType<typeof group>[] }>();
    for (const g of groups) {
      for (const rule of alertingRules([g])) {
        const c = RULE_CASES[rule.alert];
        if (!c) continue;
        const firing = {
          exp_labels: { ...rule.labels, ...c.fires.labels },
          exp_annotations: { summary: rule.annotations.summary, description: c.fires.description, runbook_url: rule.annotations.runbook_url },
        };
        const firingWith = (f: FiringScenario) => [{ ...firing, exp_labels: { ...rule.labels, ...f.labels }, exp_annotations: { ...firing.exp_annotations, description: f.description } }];
        const cases = [group(c.fires, rule.alert, [firing]), ...(c.alsoFires ?? []).map((f) => group(f, rule.alert, firingWith(f))), ...c.silent.map((s) => group(s, rule.alert, []))];
        for (const t of cases) {
          const key = `${g.name}-${t.interval}`;
          const entry = files.get(key) ?? { ruleFile: path.join(dir, 'rules', `${g.name}.yaml`), interval: t.interval, tests: [] };
          entry.tests.push(t);
          files.set(key, entry);
        }
      }
    }
    const testFiles = [...files].map(([key, f]) => {
      const file = path.join(dir, `${key}.test.yaml`);
      writeFileSync(file, stringify({ rule_files: [f.ruleFile], evaluation_interval: f.interval, tests: f.tests }, { lineWidth: 0 }));
      return file;
    });
    const report = await tool('promtool', ['test', 'rules', ...testFiles]);
    expect(report).toMatch(/SUCCESS/);
    expect(report).not.toMatch(/FAILED/);
  }, 120_000);

  it('gives every alert a severity, a summary, a description and a runbook_url from the one pattern', () => {
    for (const a of alerts) {
      expect(['page', 'ticket']).toContain(a.labels.severity);
      expect(a.annotations.summary).toMatch(/\S/);
      expect(a.annotations.description).toMatch(/\S/);
      expect(a.annotations.runbook_url).toBe(`${config.observability.runbookBaseUrl}/${a.alert}.md`);
    }
  });
});
