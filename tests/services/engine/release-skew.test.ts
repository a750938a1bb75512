/**
 * A rollout where the API's release is newer than a worker's: the API accepts a job type the
 * worker has no processor for. The job is not the owner's fault and must not be failed or
 * dead-lettered for it: it is deferred (its attempt not charged, the deferral in its audit
 * trail and in platform_jobs_deferred_total) and runs once a worker of the new release takes it.
 */
import { findProcessor } from '../../../services/worker/jobs';
import { createEngineFixture, submission, waitFor, type EngineFixture } from './fixture';

let fx: EngineFixture;

beforeAll(async () => {
  fx = await createEngineFixture();
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

it('defers a job whose type the running worker has no processor for, and a worker of the newer release runs it', async () => {
  const olderRelease = await fx.startRunner({}, { processors: (type) => (type === 'sleep' ? undefined : findProcessor(type)) });
  const { job } = await fx.core.jobs.submit(submission({ ownerId: fx.ownerId, type: 'sleep', input: { ms: 1 } }));

  const deferred = await waitFor('the older worker to give the job back', async () => {
    const [row] = await fx.query<{ to_status: string; detail: string }>("SELECT to_status, detail FROM job_events WHERE job_id = $1 AND from_status = 'running' ORDER BY id", [job.id]);
    return row;
  });
  expect(deferred.to_status).toBe('queued');
  expect(deferred.detail).toMatch(/^attempt 1 not charged: it failed on the worker's release, not on the job \(no processor for job type "sleep" in this worker's release\); deferral 1 of \d+/);
  expect(await fx.one('SELECT status, attempts, deferrals FROM jobs WHERE id = $1', [job.id])).toEqual({ status: 'queued', attempts: 0, deferrals: 1 });

  await olderRelease.stop(1_000);
  await fx.startRunner();
  await waitFor('the newer worker to run it', async () => (await fx.one<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [job.id])).status === 'succeeded', 30_000);
  const trail = await fx.query<{ from_status: string | null; to_status: string }>('SELECT from_status, to_status FROM job_events WHERE job_id = $1 ORDER BY id', [job.id]);
  expect(trail.map((row) => `${row.from_status}>${row.to_status}`)).toEqual(['null>queued', 'queued>running', 'running>queued', 'queued>running', 'running>succeeded']);
}, 60_000);
