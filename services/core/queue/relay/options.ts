import { STALL_SETTINGS } from '../../../contract';
import { withTimeout } from '../../timeout';

export interface RelayOptions {
  /** BullMQ key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** Queued rows younger than this are left to the in-process hand-off. Default 2 s. */
  sweepGraceMs?: number;
  /** Rows read and checked against Redis per round trip. Default 1,000. */
  sweepPageSize?: number;
  /**
   * Rows checked per sweep at most, so a huge backlog costs a bounded sweep; the next sweep
   * goes on from the row where this one stopped, so every row is checked in turn. Default 50,000.
   */
  sweepMaxRows?: number;
  /**
   * A running row unchanged this long whose Redis job is gone (or finished) lost its
   * attempt: worker and Redis state both died. Default lock duration + stalled interval.
   */
  lostRunningAfterMs?: number;
  /** A hand-off to Redis slower than this is abandoned to the sweep. Default 5 s. */
  enqueueTimeoutMs?: number;
  /**
   * How long a requeue with waitForHolder waits for a worker to let go of the job's entry;
   * past it the add is left as it goes (the sweep hands the job over if it was swallowed).
   * Default 2 s: a delivery that has written its outcome finishes its entry within
   * milliseconds, and one obeying a cancel within one signal.
   */
  heldEntryWaitMs?: number;
  /**
   * How long a submitted row waits for others before they go to BullMQ together
   * (handOff). Default 10 ms: a few milliseconds more before a job can start, and no
   * submitter waits for it; 0 hands each batch over on its own.
   */
  handOffWindowMs?: number;
  /**
   * Rows waiting for a hand-off at most. While Redis is slow or away, rows past this are
   * left to the sweep (they are committed and queued in PostgreSQL) instead of piling up in
   * memory. Default 20,000.
   */
  maxWaitingHandOffs?: number;
  /**
   * How long a lag this process measured stays exported (platform_relay_lag_seconds).
   * Default three sweep intervals (15 s when this process runs no sweeper).
   */
  lagFreshForMs?: number;
}

/** The options with their defaults filled in; lagFreshForMs has none of its own (it follows the sweep interval). */
export type ResolvedRelayOptions = Required<Omit<RelayOptions, 'lagFreshForMs'>> & Pick<RelayOptions, 'lagFreshForMs'>;

export function resolveRelayOptions(options: RelayOptions): ResolvedRelayOptions {
  return {
    sweepGraceMs: 2_000,
    sweepPageSize: 1_000,
    sweepMaxRows: 50_000,
    lostRunningAfterMs: STALL_SETTINGS.lockDurationMs + STALL_SETTINGS.stalledIntervalMs,
    enqueueTimeoutMs: 5_000,
    heldEntryWaitMs: 2_000,
    handOffWindowMs: 10,
    maxWaitingHandOffs: 20_000,
    ...options,
  };
}

/** A Redis call of the relay, bounded by enqueueTimeoutMs (withTimeout), rejected with an error naming `what`. */
export function withinEnqueueTimeout<T>(options: Pick<ResolvedRelayOptions, 'enqueueTimeoutMs'>, promise: Promise<T>, what: string): Promise<T> {
  const ms = options.enqueueTimeoutMs;
  return withTimeout(promise, ms, `Redis ${what} timed out after ${ms} ms`);
}
