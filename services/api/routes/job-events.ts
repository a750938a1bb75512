import { setTimeout as sleep } from 'node:timers/promises';
import type { Response } from 'express';
import { isTerminalStatus } from '../../core/jobs/lifecycle';
import type { JobService } from '../../core/jobs/types';
import type { Logger } from '../../core/logger';
import type { Lifecycle } from '../dependencies';

export interface JobEventsOptions {
  jobs: JobService;
  lifecycle: Lifecycle;
  log: Logger;
  pollIntervalMs?: number;
  heartbeatIntervalMs?: number;
}

/** What EventSource waits before reconnecting (with Last-Event-ID) after the stream drops. */
const RECONNECT_DELAY_MS = 2_000;

/**
 * Server-Sent Events of a job's state changes: polls the audit trail, resumes after
 * Last-Event-ID, ends after a terminal state, on client disconnect and when the server
 * drains (the client reconnects elsewhere and resumes). Comments keep proxies from
 * timing the idle stream out.
 */
export async function streamJobEvents(
  { jobs, lifecycle, log, pollIntervalMs = 500, heartbeatIntervalMs = 15_000 }: JobEventsOptions,
  { ownerId, jobId, after }: { ownerId: string; jobId: string; after?: number },
  res: Response,
): Promise<void> {
  let cursor = after;
  // Read before the events: if the job was terminal then, its terminal event is among them or already seen.
  const jobAtStart = await jobs.get(ownerId, jobId);
  let pending = await jobs.events(ownerId, jobId, cursor);

  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(`retry: ${RECONNECT_DELAY_MS}\n\n`);

  const disconnected = new AbortController();
  res.once('close', () => disconnected.abort());
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatIntervalMs);
  let finished = isTerminalStatus(jobAtStart.status);
  try {
    for (;;) {
      for (const event of pending) {
        const { eventId, ...data } = event;
        res.write(`id: ${eventId}\ndata: ${JSON.stringify(data)}\n\n`);
        cursor = eventId;
        if (isTerminalStatus(event.to)) finished = true;
      }
      if (finished || disconnected.signal.aborted || lifecycle.draining) break;
      await sleep(pollIntervalMs, undefined, { signal: disconnected.signal });
      pending = await jobs.events(ownerId, jobId, cursor);
    }
  } catch (error) {
    if (!disconnected.signal.aborted) log.warn({ err: error, jobId }, 'job event stream ended by an error; the client will resume');
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}
