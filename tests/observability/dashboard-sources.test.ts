/**
 * Counters some api process increments must be read from the api's scrape job too, or their
 * panels and the runbooks' queries stay flat while the events happen: cancels go through the api, and the relay's
 * sweep (dead letters and deferrals of lost attempts) runs in whichever api or worker
 * process holds its lock.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { METRICS } from '../../services/contract';
import { platformDashboards } from '../../platform/observability/dashboards';

const RUNBOOKS = path.join(__dirname, '../../runbooks');

/** The PromQL blocks of the alert runbooks. */
function runbookQueries(): string[] {
  return readdirSync(RUNBOOKS)
    .filter((f) => f.endsWith('.md'))
    .flatMap((f) => [...readFileSync(path.join(RUNBOOKS, f), 'utf8').matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1] as string));
}

function exprsOf(metric: string): string[] {
  const out: string[] = runbookQueries().filter((q) => q.includes(`${metric}{`));
  for (const d of platformDashboards()) {
    for (const panel of (d.panels ?? []) as { targets?: { expr?: string }[] }[]) {
      for (const t of panel.targets ?? []) if (t.expr?.includes(`${metric}{`)) out.push(t.expr);
    }
  }
  return out;
}

/** Whether every selector of `metric` in `expr` admits the scrape job `job`. */
function admits(expr: string, metric: string, job: string): boolean {
  const selectors = [...expr.matchAll(new RegExp(`${metric}\\{([^}]*)\\}`, 'g'))].map((m) => m[1] as string);
  return selectors.length > 0 && selectors.every((labels) => {
    const m = /job(=~|=)"([^"]*)"/.exec(labels);
    if (!m) return true;
    return m[1] === '=' ? m[2] === job : new RegExp(`^(?:${m[2]})$`).test(job);
  });
}

describe.each([METRICS.jobsCancelled, METRICS.jobsFailed, METRICS.jobsDeferred])('dashboard panels and runbook queries of %s', (metric) => {
  it('read the api processes that count it as well as the workers', () => {
    const exprs = exprsOf(metric);
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) {
      expect({ expr, api: admits(expr, metric, 'api'), worker: admits(expr, metric, 'worker') }).toEqual({ expr, api: true, worker: true });
    }
  });
});
