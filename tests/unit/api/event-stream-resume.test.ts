import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { AccessClaims } from '../../../services/core/auth';
import type { StoredJobEvent } from '../../../services/core/db/job-events';
import type { Subscriber } from '../../../services/core/jobs/event-hub';
import { EventStreams } from '../../../services/api/routes/job-events';

const OWNER = '0190c0de-0000-7000-8000-000000000001';
const JOB = '0190c0de-0000-7000-8000-0000000000aa';

function event(eventId: number, to: StoredJobEvent['to']): StoredJobEvent {
  return { eventId, ownerId: OWNER, jobId: JOB, parentId: null, from: null, to, at: new Date(0).toISOString(), detail: null };
}

/** The ids of the `id:` lines a stream has sent so far. */
function sentIds(text: string): number[] {
  return [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
}

/**
 * The hub reads a statement's rows after its notification, so a stream resuming with
 * Last-Event-ID can find an event in its backlog read and then get it live as well. The hub
 * and the job service here are scripted to do exactly that, in that order, which the real
 * ones do only now and then under load (tests/services/api/event-streams.test.ts runs them).
 */
describe('a resumed event stream (services/api/routes/job-events.ts)', () => {
  let server: Server;
  let origin: string;
  let subscriber: Subscriber | undefined;
  const backlog = [event(11, 'queued'), event(12, 'running')];

  beforeAll(async () => {
    const streams = new EventStreams({
      hub: {
        subscribe: async (registered) => {
          subscriber = registered;
          return () => (subscriber = undefined);
        },
      },
      jobs: {
        get: () => Promise.reject(new Error('an owner stream reads no job')),
        events: () => Promise.reject(new Error('an owner stream reads no job')),
        ownerEvents: async (_owner, after) => backlog.filter((candidate) => candidate.eventId > (after ?? 0)),
      },
      lifecycle: { draining: false },
      limits: { EVENT_STREAMS_MAX: 10, EVENT_STREAMS_PER_USER: 10, EVENT_STREAMS_PER_ADDRESS: 10, EVENT_STREAM_MAX_SECONDS: 60, EVENT_STREAM_HEARTBEAT_SECONDS: 60 },
      auth: { watchRevocation: () => () => undefined },
    });
    const caller = { userId: OWNER } as AccessClaims;
    const app = express();
    app.get('/events', (req, res, next) => {
      streams.stream(res, { caller, address: '127.0.0.1', source: { kind: 'owner' }, after: Number(req.header('last-event-id')) }).catch(next);
    });
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends an event its backlog read found once, also when the hub delivers it live afterwards; a new event still goes out', async () => {
    const controller = new AbortController();
    const response = await fetch(`${origin}/events`, { headers: { 'last-event-id': '10' }, signal: controller.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (done: (ids: number[]) => boolean) => {
      while (!done(sentIds(text))) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`the stream ended after ${JSON.stringify(sentIds(text))}`);
        text += decoder.decode(chunk.value, { stream: true });
      }
    };
    await readUntil((ids) => ids.length >= 2);
    // The hub catches up: the backlog's two events arrive live, then one written after the resume.
    for (const late of [...backlog, event(13, 'succeeded')]) subscriber?.deliver(late);
    await readUntil((ids) => ids.includes(13));
    expect(sentIds(text)).toEqual([11, 12, 13]);
    // A later event with a lower id (ids are not in commit order) is not mistaken for a repeat.
    subscriber?.deliver(event(9, 'queued'));
    await readUntil((ids) => ids.includes(9));
    expect(sentIds(text)).toEqual([11, 12, 13, 9]);
    controller.abort();
  });
});
