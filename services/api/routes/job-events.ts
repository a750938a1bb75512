import type { Response } from 'express';
import type { Env } from '../../contract';
import type { AccessClaims, AuthService } from '../../core/auth';
import type { StoredJobEvent } from '../../core/db/job-events';
import { ServiceUnavailableError } from '../../core/errors';
import type { EventHub, SubscriptionEnd } from '../../core/jobs/event-hub';
import { isTerminalStatus } from '../../core/jobs/lifecycle';
import type { JobService } from '../../core/jobs/types';
import type { Lifecycle } from '../dependencies';
import { TooManyRequestsError } from '../errors';

export type StreamLimits = Pick<Env, 'EVENT_STREAMS_MAX' | 'EVENT_STREAMS_PER_USER' | 'EVENT_STREAMS_PER_ADDRESS' | 'EVENT_STREAM_MAX_SECONDS' | 'EVENT_STREAM_HEARTBEAT_SECONDS'>;

/** What a stream follows: one job (and its tasks, when it fans out), or every job of its caller. */
export type StreamSource = { kind: 'job'; jobId: string } | { kind: 'owner' };

/** What EventSource waits before reconnecting (with Last-Event-ID) after the server ends a stream. */
const RECONNECT_DELAY_MS = 2_000;
/** How long a client turned away by a cap waits before trying again. */
const CAP_RETRY_AFTER_SECONDS = 5;
/** A client this far behind (bytes the socket has not taken) is cut off; it resumes from its last id. */
const MAX_UNSENT_BYTES = 1_048_576;
/** Events a resume reads per round trip. */
const BACKLOG_PAGE = 1_000;
/**
 * Bytes of missed events one connection sends before it ends with a `retry:` hint, and the
 * client resumes from its last id: what a stream reads and holds for a resume is bounded by
 * this, not by how many events its user's jobs ever wrote.
 */
const BACKLOG_BYTES_PER_CONNECTION = MAX_UNSENT_BYTES;

/**
 * Server-Sent Events of job state changes, fed by the process's EventHub (one LISTEN
 * connection, one read per notification batch) rather than a poll per stream. A stream
 * first subscribes, then reads what it missed from job_events (after Last-Event-ID) a page
 * at a time, sends that, then lives, never sending an event twice: the hub reads a statement's rows
 * after its notification, so an event the backlog read already found may still arrive live. It ends after
 * its job's terminal state, when the client leaves, when the process drains or loses its
 * notifications, after EVENT_STREAM_MAX_SECONDS, and once it has sent
 * BACKLOG_BYTES_PER_CONNECTION of a backlog with more to follow; each end but the first carries a
 * `retry:` hint, and the client resumes where it stopped. A stream also ends, without a hint,
 * once the token that opened it is revoked: a session signed out, reset or demoted sees no
 * further event, whatever stream it held open. Streams are capped per user, per client address
 * and per process: registration is open, so a few accounts from one address would otherwise
 * take every stream the process holds.
 */
export class EventStreams {
  private open = 0;
  private readonly perUser = new Map<string, number>();
  private readonly perAddress = new Map<string, number>();

  constructor(
    private readonly deps: {
      hub: Pick<EventHub, 'subscribe'>;
      jobs: Pick<JobService, 'get' | 'events' | 'ownerEvents'>;
      lifecycle: Lifecycle;
      limits: StreamLimits;
      auth: Pick<AuthService, 'watchRevocation'>;
    },
  ) {}

  get openStreams(): number {
    return this.open;
  }

  /** `address` is the client's address key (clientAddressKey: IPv6 by /64). */
  async stream(res: Response, request: { caller: AccessClaims; address: string; source: StreamSource; after?: number }): Promise<void> {
    const ownerId = request.caller.userId;
    this.admit(ownerId, request.address);
    this.open += 1;
    increment(this.perUser, ownerId);
    increment(this.perAddress, request.address);
    try {
      await this.run(res, request);
    } finally {
      this.open -= 1;
      decrement(this.perUser, ownerId);
      decrement(this.perAddress, request.address);
    }
  }

  /** The caller's own caps first: a client over them is told so (429), not that the server is full. */
  private admit(ownerId: string, address: string): void {
    const { limits, lifecycle } = this.deps;
    if (lifecycle.draining) throw new ServiceUnavailableError('The server is shutting down; open the stream again.', CAP_RETRY_AFTER_SECONDS);
    if ((this.perUser.get(ownerId) ?? 0) >= limits.EVENT_STREAMS_PER_USER) {
      throw new TooManyRequestsError(`At most ${limits.EVENT_STREAMS_PER_USER} event streams may be open per user; close one, or try again after Retry-After.`, CAP_RETRY_AFTER_SECONDS);
    }
    if ((this.perAddress.get(address) ?? 0) >= limits.EVENT_STREAMS_PER_ADDRESS) {
      throw new TooManyRequestsError(
        `At most ${limits.EVENT_STREAMS_PER_ADDRESS} event streams may be open from one client address, whatever the account; close one, or try again after Retry-After.`,
        CAP_RETRY_AFTER_SECONDS,
      );
    }
    if (this.open >= limits.EVENT_STREAMS_MAX) {
      throw new ServiceUnavailableError(`This server holds its maximum of ${limits.EVENT_STREAMS_MAX} event streams.`, CAP_RETRY_AFTER_SECONDS);
    }
  }

  private async run(res: Response, { caller, source, after }: { caller: AccessClaims; source: StreamSource; after?: number }): Promise<void> {
    const { hub, jobs, limits, auth } = this.deps;
    const ownerId = caller.userId;
    let ended = false;
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const end = (retryHint: boolean) => {
      if (ended) return;
      ended = true;
      if (res.headersSent) {
        if (retryHint && !res.writableEnded) res.write(`retry: ${RECONNECT_DELAY_MS}\n\n`);
        res.end();
      }
      resolveDone();
    };
    res.once('close', () => end(false));
    // A client gone before the stream began (while it was authenticated or rate limited) closed the response before
    // anyone listened: such a stream would otherwise hold its user's and its address's places until EVENT_STREAM_MAX_SECONDS.
    if (res.destroyed) return;
    // Read before the backlog: a job terminal by then has its terminal event in it or already sent.
    const jobAtStart = source.kind === 'job' ? await jobs.get(ownerId, source.jobId) : undefined;
    if (ended) return;
    const matches = (event: StoredJobEvent) => source.kind === 'owner' || event.jobId === source.jobId || event.parentId === source.jobId;
    const endsStream = (event: StoredJobEvent) => source.kind === 'job' && event.jobId === source.jobId && isTerminalStatus(event.to);

    let buffered: StoredJobEvent[] | undefined = [];
    // Each backlog event is skipped once when the hub delivers it too; ids are not in commit order, so a set, not a high-water mark.
    const sentFromBacklog = new Set<number>();
    let sentBytes = 0;
    const send = (event: StoredJobEvent) => {
      if (ended) return;
      const { eventId, ownerId: _owner, ...data } = event;
      const message = `id: ${eventId}\ndata: ${JSON.stringify(data)}\n\n`;
      sentBytes += message.length;
      res.write(message);
      if (endsStream(event)) end(false);
      else if (res.writableLength > MAX_UNSENT_BYTES) end(true);
    };

    const sendLive = (event: StoredJobEvent) => {
      if (!sentFromBacklog.delete(event.eventId)) send(event);
    };

    const unsubscribe = await hub.subscribe({
      ownerId,
      deliver: (event) => {
        if (!matches(event)) return;
        if (buffered) buffered.push(event);
        else sendLive(event);
      },
      end: (_reason: SubscriptionEnd) => end(true),
    });
    // Before the backlog is read: once the token is revoked, nothing more is sent.
    const unwatch = auth.watchRevocation(caller, () => end(false));
    const timers: NodeJS.Timeout[] = [];
    try {
      // The first page before the headers: a failure to read it is still answered with a status.
      let page = await this.backlogPage(ownerId, source, after);
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      // HEAD (allowed wherever GET is): Node sends the headers of a body-less answer only with its end, and a stream has none of its own.
      if (res.req.method === 'HEAD') {
        end(false);
        return;
      }
      res.write(`retry: ${RECONNECT_DELAY_MS}\n\n`);
      for (;;) {
        for (const event of page) {
          send(event);
          sentFromBacklog.add(event.eventId);
        }
        const last = page.at(-1);
        if (ended || !last || page.length < BACKLOG_PAGE) break;
        // More may follow than one connection sends: the client resumes after the last one sent.
        if (sentBytes >= BACKLOG_BYTES_PER_CONNECTION) end(true);
        else page = await this.backlogPage(ownerId, source, last.eventId);
      }
      const arrived = buffered ?? [];
      buffered = undefined;
      for (const event of arrived) sendLive(event);
      if (jobAtStart && isTerminalStatus(jobAtStart.status)) end(false);
      // Ended before the headers (the client left, or the hub drained while the backlog was read).
      if (ended && !res.writableEnded) res.end();

      timers.push(setInterval(() => !ended && res.write(': keep-alive\n\n'), limits.EVENT_STREAM_HEARTBEAT_SECONDS * 1_000));
      timers.push(setTimeout(() => end(true), limits.EVENT_STREAM_MAX_SECONDS * 1_000));
      await done;
    } catch (error) {
      if (!res.headersSent) throw error;
      res.req.log.warn({ err: error }, 'job event stream ended by an error; the client will resume');
      end(true);
    } finally {
      for (const timer of timers) clearTimeout(timer);
      unsubscribe();
      unwatch();
    }
  }

  /** One page of what the stream missed: after `after` for a resume; a job stream without one starts from the job's first event. */
  private async backlogPage(ownerId: string, source: StreamSource, after: number | undefined): Promise<StoredJobEvent[]> {
    if (source.kind === 'owner' && after === undefined) return [];
    return source.kind === 'job' ? this.deps.jobs.events(ownerId, source.jobId, after ?? 0) : this.deps.jobs.ownerEvents(ownerId, after ?? 0);
  }
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left === 0) counts.delete(key);
  else counts.set(key, left);
}
