import { Client, type Pool } from 'pg';
import type { WorkerEnv } from '../../contract';
import { JOB_EVENTS_CHANNEL, parseWrittenEvents, readWrittenEvents, type StoredJobEvent, type WrittenEvents } from '../db/job-events';
import { databaseSsl } from '../db/tls';
import type { Logger } from '../logger';

/** Why the hub stopped a subscription: the process is shutting down, or its notifications were interrupted. */
export type SubscriptionEnd = 'draining' | 'interrupted';

export interface Subscriber {
  ownerId: string;
  /** Called for each of the owner's events, in the order their statements committed. */
  deliver(event: StoredJobEvent): void;
  /** The hub will deliver nothing more; the stream ends and its client resumes from its last id. */
  end(reason: SubscriptionEnd): void;
}

/** A notification, numbered in the order this process received it. */
interface AnnouncedWrite extends WrittenEvents {
  sequence: number;
}

/**
 * The one notification path of an API process. One dedicated connection LISTENs on the
 * channel every audit-row write notifies (once per statement, migration 0004); each
 * notification names the rows its statement wrote, and the hub reads them (notifications
 * that arrive during a read are read together by the next one) and hands each to the
 * subscribers of its owner, in memory. A read is per notification batch, never per
 * subscriber: a thousand open streams cost the database what one does.
 *
 * The connection is opened by the first subscriber and reopened by the next after a loss.
 * A loss ends every subscription ('interrupted'): what was committed meanwhile was never
 * announced, and a client that resumes from its last event id reads it from job_events.
 */
export class EventHub {
  private listener: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private readonly byOwner = new Map<string, Set<Subscriber>>();
  private pending: AnnouncedWrite[] = [];
  /** Notifications received so far: what a subscriber was registered after (`since`). */
  private announced = 0;
  private readonly since = new WeakMap<Subscriber, number>();
  private reading: Promise<void> | undefined;
  private closed = false;
  /** Reads of notified rows this process made, for tests and metrics: the database cost of live status. */
  reads = 0;

  constructor(
    private readonly deps: { env: Pick<WorkerEnv, 'DATABASE_URL' | 'DATABASE_SSL'>; pool: Pool; log: Logger; applicationName?: string },
  ) {}

  get subscribers(): number {
    let count = 0;
    for (const set of this.byOwner.values()) count += set.size;
    return count;
  }

  /**
   * Registers a subscriber once the hub is listening, so that everything committed after
   * this resolves reaches it, and nothing notified before; what was committed before is
   * the caller's to read (resume), and a resumed stream would otherwise send it twice.
   * Returns the unsubscribe function.
   */
  async subscribe(subscriber: Subscriber): Promise<() => void> {
    if (this.closed) throw new Error('the event hub is closed');
    await this.listening();
    this.since.set(subscriber, this.announced);
    const set = this.byOwner.get(subscriber.ownerId) ?? new Set<Subscriber>();
    set.add(subscriber);
    this.byOwner.set(subscriber.ownerId, set);
    return () => this.remove(subscriber);
  }

  /** Ends every subscription ('draining') and closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.endAll('draining');
    const listener = this.listener ?? (await this.connecting?.catch(() => undefined));
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }

  /** Ends every subscription, as at shutdown, without closing the hub. */
  drain(): void {
    this.endAll('draining');
  }

  private remove(subscriber: Subscriber): void {
    const set = this.byOwner.get(subscriber.ownerId);
    if (!set) return;
    set.delete(subscriber);
    if (set.size === 0) this.byOwner.delete(subscriber.ownerId);
  }

  private endAll(reason: SubscriptionEnd): void {
    const all = [...this.byOwner.values()].flatMap((set) => [...set]);
    this.byOwner.clear();
    for (const subscriber of all) subscriber.end(reason);
  }

  private listening(): Promise<Client> {
    if (this.listener) return Promise.resolve(this.listener);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      connectionString: this.deps.env.DATABASE_URL,
      ssl: databaseSsl(this.deps.env.DATABASE_SSL),
      application_name: this.deps.applicationName ?? 'pk-api-events',
      keepAlive: true,
    });
    client.on('notification', (message) => {
      if (message.channel !== JOB_EVENTS_CHANNEL) return;
      const written = parseWrittenEvents(message.payload);
      if (written) this.announce(written);
    });
    const lost = (error?: Error) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.pending = [];
      if (!this.closed) {
        this.deps.log.warn({ err: error, subscribers: this.subscribers }, 'job event notifications interrupted; open streams end and their clients resume');
        this.endAll('interrupted');
      }
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${JOB_EVENTS_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new Error('the event hub is closed');
    }
    this.listener = client;
    return client;
  }

  private announce(written: WrittenEvents): void {
    this.announced += 1;
    if (this.byOwner.size === 0) return;
    this.pending.push({ ...written, sequence: this.announced });
    this.reading ??= this.readPending().finally(() => {
      this.reading = undefined;
    });
  }

  /** Reads what the pending notifications named, one read per batch of them, until none is left. */
  private async readPending(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      if (this.byOwner.size === 0) continue;
      let events: { event: StoredJobEvent; xid: string }[];
      try {
        this.reads += 1;
        events = await readWrittenEvents(this.deps.pool, batch);
      } catch (error) {
        this.deps.log.warn({ err: error }, 'could not read notified job events; open streams end and their clients resume');
        this.endAll('interrupted');
        continue;
      }
      for (const { event, xid } of events) {
        const sequence = batch.find((write) => write.xid === xid && write.minId <= event.eventId && event.eventId <= write.maxId)?.sequence ?? this.announced;
        for (const subscriber of this.byOwner.get(event.ownerId) ?? []) {
          // Notified before this subscriber came, the row was committed before it too: its own read of what it missed has it.
          if ((this.since.get(subscriber) ?? 0) < sequence) subscriber.deliver(event);
        }
      }
    }
  }
}
