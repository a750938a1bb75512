import { QUEUES } from '../../contract';
import type { ReconcileReport } from '../../core/jobs/types';
import type { Runtime } from '../../core/runtime';
import { printJson, printTable } from '../output';

export async function queueStats(core: Runtime, options: { json?: boolean }): Promise<number> {
  const stats = await core.admin.queueStats();
  if (options.json) {
    printJson(stats);
    return 0;
  }
  process.stdout.write(`queue ${stats.queue}${stats.paused ? ' (PAUSED)' : ''}; relay lag ${stats.relayLagSeconds.toFixed(1)} s\n\nin Redis (BullMQ queue entries; jobs of a type that shares entries, submitted together, count one):\n`);
  printTable(Object.entries(stats.counts).map(([state, count]) => ({ state, count })), ['state', 'count']);
  process.stdout.write('\nin PostgreSQL (jobs; the source of truth):\n');
  printTable(Object.entries(stats.statuses).map(([status, count]) => ({ status, count })), ['status', 'count']);
  return 0;
}

export async function pauseQueue(core: Runtime, options: { json?: boolean }): Promise<number> {
  await core.admin.pause();
  if (options.json) printJson({ queue: QUEUES.jobs, paused: true });
  else process.stdout.write('queue paused: workers finish what they hold and take nothing new\n');
  return 0;
}

export async function resumeQueue(core: Runtime, options: { json?: boolean }): Promise<number> {
  await core.admin.resume();
  if (options.json) printJson({ queue: QUEUES.jobs, paused: false });
  else process.stdout.write('queue resumed\n');
  return 0;
}

/** How long reconcile waits before it looks again at jobs still missing from Redis once it is done: what is on its way arrives meanwhile. */
const MISSING_CONFIRM_MS = 2_000;

/**
 * How long the oldest accepted job still missing from Redis has waited, once the reconcile is
 * done; 0 when Redis holds every one. The report counts the jobs Redis took: one whose hand-off
 * Redis refused (full under noeviction, or gone again) is counted nowhere, so a run that handed
 * over nothing would read as "nothing left to repair". A job that is still missing after a
 * second look, a moment later, was not handed over.
 */
async function stillMissingSeconds(core: Runtime): Promise<number> {
  if ((await core.relay.measureLagSeconds()) === 0) return 0;
  await new Promise((resolve) => setTimeout(resolve, MISSING_CONFIRM_MS));
  return core.relay.measureLagSeconds();
}

export async function reconcile(core: Runtime, options: { json?: boolean }): Promise<number> {
  const report = await core.admin.reconcile();
  const missing = await stillMissingSeconds(core);
  if (options.json) printJson({ ...report, stillMissingSeconds: missing });
  else process.stdout.write(describeReconcile(report, missing));
  // Part of the work is not done: the exit status says so to a script, as dlq replay's does.
  return missing > 0 ? 1 : 0;
}

/** The report as an operator reads it: one line per kind of repair, zeros included, so "nothing left to repair" is visible. */
function describeReconcile(report: ReconcileReport, stillMissing: number): string {
  const { firstLook, secondLook } = report.checked;
  const lines = [
    `checked ${firstLook} queued job(s) against Redis, then ${secondLook} at a second look`,
    `re-enqueued   ${report.reenqueued} queued job(s) that Redis had lost`,
    `refused       ${report.refused} queued job(s) it had lost that Redis did not take when handed over (full, or not answering)`,
    `retried       ${report.retried} running job(s) whose worker and Redis entry were both gone (the lost attempt is not charged)`,
    `failed        ${report.failed} running job(s) like those that had no deferral left (now dead letters)`,
    `dead-lettered ${report.abandoned} crash-looping job(s) whose runs kept ending with their worker`,
  ];
  if (report.failed + report.abandoned > 0) lines.push('inspect the dead letters: platform dlq list');
  if (report.pending > 0) lines.push(`${report.pending} queued job(s) were missing from Redis at the second look only: probably still on their way; the relay sweep hands over any that stay missing`);
  if (report.sweptElsewhere) lines.push('another process (an api or worker) was sweeping at the same time: it repairs what it finds and logs it; run platform reconcile again to check what is left');
  if (stillMissing > 0) {
    const missing = `NOT DONE: accepted jobs are still missing from Redis (the oldest for ${stillMissing.toFixed(0)} s)`;
    // With another process sweeping, this run did not look at every job: that one may hand them over still.
    lines.push(
      report.sweptElsewhere
        ? `${missing}: the process sweeping meanwhile may still hand them over, or Redis did not take them (the log lines above say why); run platform reconcile again`
        : `${missing}: Redis did not take them (full, or not answering: the log lines above say why); once Redis takes writes again, run platform reconcile again`,
    );
  }
  return `${lines.join('\n')}\n`;
}
