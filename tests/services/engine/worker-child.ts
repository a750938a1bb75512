import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
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
 * - short lock and stall windows (TEST_LOCK_DURATION_MS lengthens the lock, for a test
 *   showing that something other than a lapsed lock set a job free; TEST_STALLED_INTERVAL_MS
 *   spaces BullMQ's stalled checks, for one showing that something other than them did);
 * - TEST_LINGER_AFTER_OUTPUT_MS: file.compress lingers after writing its output, so a test
 *   can kill it between "output written" and "success reported";
 * - an echo job whose payload is "poison" kills this process at once (SIGKILL, as the
 *   kernel's OOM killer would), after noting the delivery in TEST_DELIVERY_LOG; one whose
 *   payload is "poison after <n> ms" does so once it has run that long;
 * - an echo job whose payload is "stray rejection" leaves a rejected promise nobody awaits;
 * - an echo job whose payload is "block <n> ms after <m> ms" holds this process's event loop
 *   for n ms once it has run m ms, as a tight loop or a huge synchronous parse would;
 * - an echo job whose payload is "first run blocks <n> ms after <m> ms and fails; later runs
 *   wait <k> ms" does the former on its first run (told by TEST_DELIVERY_LOG, which every run
 *   of it is noted in, across processes) and then fails; its later runs wait k ms without
 *   holding the loop and succeed;
 * - TEST_STALL_CSV_READS_LOG: csv.summary gets the first chunk of its file and then nothing
 *   (a store that stopped sending); the job id is appended to this file once the processor
 *   waits for more.
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
  const poisonAfterMs = /^poison after (\d+) ms$/.exec(String(input.payload))?.[1];
  if (poisonAfterMs) await delay(Number(poisonAfterMs));
  if (input.payload === 'poison' || poisonAfterMs) {
    if (process.env.TEST_DELIVERY_LOG) appendFileSync(process.env.TEST_DELIVERY_LOG, `${jobId}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
  const firstRunBlocks = /^first run blocks (\d+) ms after (\d+) ms and fails; later runs wait (\d+) ms$/.exec(String(input.payload));
  if (firstRunBlocks) {
    const log = process.env.TEST_DELIVERY_LOG as string;
    const ranBefore = existsSync(log) && readFileSync(log, 'utf8').split('\n').includes(jobId);
    appendFileSync(log, `${jobId}\n`);
    if (ranBefore) {
      await delay(Number(firstRunBlocks[3]));
      return { result: { payload: input.payload } };
    }
    await delay(Number(firstRunBlocks[2]));
    const until = Date.now() + Number(firstRunBlocks[1]);
    while (Date.now() < until);
    throw new Error('the first run failed after holding its loop');
  }
  const block = /^block (\d+) ms after (\d+) ms$/.exec(String(input.payload));
  if (block) {
    await delay(Number(block[2]));
    const until = Date.now() + Number(block[1]);
    while (Date.now() < until);
  }
  if (input.payload === 'stray rejection') void Promise.reject(new Error('a stray rejection nobody awaited'));
  return { result: { payload: input.payload } };
});

const stalledCsvReadsLog = process.env.TEST_STALL_CSV_READS_LOG;

/** The body's first chunk, then nothing: `onStalled` is called once its reader asks for more. */
async function firstChunkOnly(body: Readable, onStalled: () => void): Promise<Readable> {
  const chunks = body[Symbol.asyncIterator]();
  const first = (await chunks.next()) as IteratorResult<Buffer>;
  let reads = 0;
  return new Readable({
    read() {
      reads += 1;
      if (reads === 1 && !first.done) this.push(first.value);
      else if (reads === 2) onStalled();
    },
    destroy(error, callback) {
      void chunks.return?.();
      callback(error);
    },
  });
}

const csv = findProcessor('csv.summary') as Processor;
/** csv.summary whose file stalls after its first chunk; the job id goes to `log` once the processor waits for more. */
function stallingCsv(log: string): Processor {
  return {
    definition: csv.definition,
    run: (context) =>
      csv.run({
        ...context,
        files: {
          ...context.files,
          async open(fileId) {
            const opened = await context.files.open(fileId);
            return { ...opened, body: await firstChunkOnly(opened.body, () => appendFileSync(log, `${context.jobId}\n`)) };
          },
        },
      }),
  };
}

function processorFor(type: string): Processor | undefined {
  if (type === 'file.compress' && lingerMs > 0) return lingeringCompress;
  if (type === 'echo') return trickyEcho as unknown as Processor;
  if (type === 'csv.summary' && stalledCsvReadsLog) return stallingCsv(stalledCsvReadsLog);
  return findProcessor(type);
}

startWorkerProcess(loadEnv('worker'), {
  runner: {
    stall: {
      ...FAST_STALL,
      lockDurationMs: Number(process.env.TEST_LOCK_DURATION_MS ?? FAST_STALL.lockDurationMs),
      stalledIntervalMs: Number(process.env.TEST_STALLED_INTERVAL_MS ?? FAST_STALL.stalledIntervalMs),
    },
    drainDelaySeconds: 1,
  },
  relay: { sweepGraceMs: 300, lostRunningAfterMs: 3_000 },
  processors: processorFor,
}).catch((error: unknown) => {
  process.stderr.write(`worker-child: ${String(error)}\n`);
  process.exit(1);
});
