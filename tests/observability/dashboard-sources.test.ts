/**
 * Counters some api process increments must be read from the api's scrape job too, or their
 * panels stay flat while the events happen: cancels go through the api, and the relay's
 * sweep (dead letters and deferrals of lost attempts) runs in whichever api or worker
 * process holds its lock.
 */
import { METRICS } from '../../services/contract';
import { platformDashboards } from '../../platform/observability/dashboards';

function exprsOf(metric: string): string[] {
  const out: string[] = [];
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

describe.each([METRICS.jobsCancelled, METRICS.jobsFailed, METRICS.jobsDeferred])('dashboard panels of %s', (metric) => {
  it('read the api processes that count it as well as the workers', () => {
    const exprs = exprsOf(metric);
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) {
      expect({ expr, api: admits(expr, metric, 'api'), worker: admits(expr, metric, 'worker') }).toEqual({ expr, api: true, worker: true });
    }
  });
});
