import { appendFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { echo } from '../../../services/contract';
import { loadEnv } from '../../../services/core/config';
import { findProcessor } from '../../../services/worker/jobs';
import { startWorkerProcess } from '../../../services/worker/main';
import { defineProcessor, type Processor } from '../../../services/worker/processor';
import { FAST_STALL } from './stall';

/**
 * The real worker process (services/worker/main.ts's startWorkerProcess, signals and all)
 * with test-only knobs:
 * - short lock and stall windows;
 * - TEST_LINGER_AFTER_OUTPUT_MS: file.compress lingers after writing its output, so a test
 *   can kill it between "output written" and "success reported";
 * - an echo job whose payload is "poison" kills this process at once (SIGKILL, as the
 *   kernel's OOM killer would), after noting the delivery in TEST_DELIVERY_LOG;
 * - an echo job whose payload is "stray rejection" leaves a rejected promise nobody awaits.
 */
const lingerMs = Number(process.env.TEST_LINGER_AFTER_OUTPUT_MS ?? 0);
const compress = findProcessor('file.compress') as Processor;
const lingeringCompress: Processor = {
  definition: compress.definition,
  async run(context) {
    const outcome = await compress.run(context);
    await delay(lingerMs, undefined, { signal: context.signal });
    return outcome;
  },
};

const trickyEcho = defineProcessor(echo, async ({ input, jobId }) => {
  if (input.payload === 'poison') {
    if (process.env.TEST_DELIVERY_LOG) appendFileSync(process.env.TEST_DELIVERY_LOG, `${jobId}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
  if (input.payload === 'stray rejection') void Promise.reject(new Error('a stray rejection nobody awaited'));
  return { result: { payload: input.payload } };
});

startWorkerProcess(loadEnv('worker'), {
  runner: { stall: FAST_STALL, drainDelaySeconds: 1 },
  relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000 },
  processors: (type) => {
    if (type === 'file.compress' && lingerMs > 0) return lingeringCompress;
    if (type === 'echo') return trickyEcho as unknown as Processor;
    return findProcessor(type);
  },
}).catch((error: unknown) => {
  process.stderr.write(`worker-child: ${String(error)}\n`);
  process.exit(1);
});
