import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestHandler } from 'express';
import { isTerminal } from '../../contract';
import type { JobService } from '../../core/jobs/types';
import type { Logger } from '../../core/logger';
import type { Lifecycle } from '../dependencies';
import { callerId } from '../middleware/authenticate';
import { requireUuid } from '../validation';

export interface JobEventsOptions {
  jobs: JobService;
  lifecycle: Lifecycle;
  log: Logger;
  pollIntervalMs?: number;
  heartbeatIntervalMs?: number;
}

/** What EventSource waits before reconnecting (with Last-Event-ID) after the stream drops. */
const RECONNECT_DELAY_MS = 2_000;

function lastEventId(header: unknown): number | undefined {
  if (typeof header !== 'string' || !/^\d{1,15}$/.test(header)) return undefined;
  return Number(header);
}

/**
 * Server-Sent Events of a job's state changes: polls the audit trail, resumes after
 * Last-Event-ID, ends after a terminal state, on client disconnect and when the server
 * drains (the client reconnects elsewhere and resumes). Comments keep proxies from
 * timing the idle stream out.
 */
export function jobEvents({ jobs, lifecycle, log, pollIntervalMs = 500, heartbeatIntervalMs = 15_000 }: JobEventsOptions): RequestHandler {
  return async (req, res) => {
    const ownerId = callerId(req);
    const jobId = requireUuid(req.params.id, 'job');
    let cursor = lastEventId(req.headers['last-event-id']);
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
    let finished = isTerminal(jobAtStart.status);
    try {
      for (;;) {
        for (const event of pending) {
          const { eventId, ...data } = event;
          res.write(`id: ${eventId}\ndata: ${JSON.stringify(data)}\n\n`);
          cursor = eventId;
          if (isTerminal(event.to)) finished = true;
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
  };
}
