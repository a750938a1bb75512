import { setTimeout as delay } from 'node:timers/promises';
import { loadEnv } from '../../../services/core/config';
import { findProcessor } from '../../../services/worker/jobs';
import { startWorkerProcess } from '../../../services/worker/main';
import type { Processor } from '../../../services/worker/processor';
import { FAST_STALL } from './stall';

/**
 * The real worker process (services/worker/main.ts's startWorkerProcess, signals and all)
 * with test-only knobs: short lock and stall windows, and file.compress that lingers for
 * TEST_LINGER_AFTER_OUTPUT_MS after writing its output, so a test can kill it between
 * "output written" and "success reported".
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

startWorkerProcess(loadEnv('worker'), {
  runner: { stall: FAST_STALL, drainDelaySeconds: 1 },
  relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000 },
  processors: (type) => (type === 'file.compress' && lingerMs > 0 ? lingeringCompress : findProcessor(type)),
}).catch((error: unknown) => {
  process.stderr.write(`worker-child: ${String(error)}\n`);
  process.exit(1);
});
