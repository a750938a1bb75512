/**
 * DESIGN's correlation rule on the worker's side: what the runner and the processor log for
 * a job carries the job's id and the request id of the call that submitted it, jobs running
 * side by side each with their own.
 */
import { echo } from '../../../services/contract';
import { createLogger } from '../../../services/core/logger';
import { defineProcessor, PermanentJobError } from '../../../services/worker/processor';
import { findProcessor } from '../../../services/worker/jobs';
import { createEngineFixture, submission, waitFor, type EngineFixture } from './fixture';

describe('worker log correlation', () => {
  let fx: EngineFixture;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    fx = await createEngineFixture();
    const log = createLogger({ service: 'worker', level: 'debug', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    const talkativeEcho = defineProcessor(echo, async ({ input, log: jobLog }) => {
      jobLog.info({ payload: input.payload }, 'echoing');
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (input.payload === 'refuse') throw new PermanentJobError('refused on purpose');
      return { result: { payload: input.payload } };
    });
    await fx.startRunner({}, { log, processors: (type) => (type === 'echo' ? talkativeEcho : findProcessor(type)) });
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('tags every line the runner and the processor log for a job with its id and its submitter\'s request id', async () => {
    const submitted = await Promise.all(
      ['keep', 'refuse', 'keep'].map((payload, index) =>
        fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'echo', input: { payload }, maxAttempts: 1, requestId: `req-correlation-${index}` })),
      ),
    );
    const ids = submitted.map(({ job }) => job.id);
    await waitFor('the three jobs to finish', async () => {
      const views = await Promise.all(ids.map((id) => fx.core.jobs.get(fx.ownerId, id)));
      return views.every((view) => view.status === 'succeeded' || view.status === 'failed');
    });

    ids.forEach((id, index) => {
      const mine = lines.filter((line) => line.jobId === id);
      expect(mine.map((line) => line.msg)).toEqual(expect.arrayContaining(index === 1 ? ['echoing', 'job failed for good: dead-lettered'] : ['echoing']));
      for (const line of mine) expect(line).toMatchObject({ service: 'worker', jobId: id, requestId: `req-correlation-${index}` });
    });
    const echoing = lines.filter((line) => line.msg === 'echoing');
    expect(echoing).toHaveLength(3);
  });
});
