import { setTimeout as delay } from 'node:timers/promises';
import { sleep } from '../../contract';
import { defineProcessor } from '../processor';

/** Sleeps longer than this report progress as they go; shorter ones just wait. */
const LONG_SLEEP_MS = 2_000;
const PROGRESS_INTERVAL_MS = 1_000;

export default defineProcessor(sleep, async ({ input, signal, progress }) => {
  const slice = input.ms >= LONG_SLEEP_MS ? PROGRESS_INTERVAL_MS : input.ms;
  let slept = 0;
  do {
    const next = Math.min(slice, input.ms - slept);
    // Rejects as soon as the signal aborts, mid-slice, not at the end of it.
    await delay(next, undefined, { signal });
    slept += next;
    if (input.ms >= LONG_SLEEP_MS) progress(Math.floor((slept * 100) / input.ms));
  } while (slept < input.ms);
  return { result: { sleptMs: slept } };
});
