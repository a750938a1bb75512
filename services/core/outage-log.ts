import type { Logger } from './logger';

/** The lines of an OutageLog: what the first failure of an outage, each later one and the first success after say. */
export interface OutageLines {
  /** The warning of an outage's first failure; it says that later failures are counted. */
  firstFailure: string;
  /** Each later failure, at debug. */
  laterFailure: string;
  /** The first success after failures, with their count. */
  recovered: string;
  /** The field of the `recovered` line that holds how many failed. */
  countField: string;
}

/**
 * The log of work that fails on every try for as long as a dependency is away (each submit
 * batch's enqueue, each sweep, each renewal of the users' shares): the first failure of an
 * outage is a warning, the later ones are logged at debug and counted, and the first success
 * after says how many failed. An outage costs the log two lines, not one per try.
 */
export class OutageLog {
  private failures = 0;

  constructor(
    private readonly log: Logger,
    private readonly lines: OutageLines,
  ) {}

  /** True between a failure and the next success. */
  get failing(): boolean {
    return this.failures > 0;
  }

  failed(error: unknown, fields: Record<string, unknown> = {}): void {
    if (this.failures === 0) this.log.warn({ err: error, ...fields }, this.lines.firstFailure);
    else this.log.debug({ err: error, ...fields }, this.lines.laterFailure);
    this.failures += 1;
  }

  /** A success: after failures, says how many there were (with `fields`, what else was counted). */
  succeeded(fields: Record<string, unknown> = {}): void {
    if (this.failures === 0) return;
    this.log.info({ [this.lines.countField]: this.failures, ...fields }, this.lines.recovered);
    this.failures = 0;
  }
}
