import type { Runtime } from '../../core/runtime';
import { printJson, printTable } from '../output';

export async function queueStats(core: Runtime, options: { json?: boolean }): Promise<number> {
  const stats = await core.admin.queueStats();
  if (options.json) {
    printJson(stats);
    return 0;
  }
  process.stdout.write(`queue ${stats.queue}${stats.paused ? ' (PAUSED)' : ''}; relay lag ${stats.relayLagSeconds.toFixed(1)} s\n\nin Redis (BullMQ):\n`);
  printTable(Object.entries(stats.counts).map(([state, count]) => ({ state, count })), ['state', 'count']);
  process.stdout.write('\nin PostgreSQL (source of truth):\n');
  printTable(Object.entries(stats.statuses).map(([status, count]) => ({ status, count })), ['status', 'count']);
  return 0;
}

export async function pauseQueue(core: Runtime): Promise<number> {
  await core.admin.pause();
  process.stdout.write('queue paused: workers finish what they hold and take nothing new\n');
  return 0;
}

export async function resumeQueue(core: Runtime): Promise<number> {
  await core.admin.resume();
  process.stdout.write('queue resumed\n');
  return 0;
}

export async function reconcile(core: Runtime, options: { json?: boolean }): Promise<number> {
  const handedOver = await core.admin.reconcile();
  if (options.json) printJson({ reenqueued: handedOver });
  else process.stdout.write(`re-enqueued ${handedOver} job(s) that Redis did not hold\n`);
  return 0;
}
