export interface MicroBatcherOptions<In, Out> {
  /** Names the batcher in errors. */
  name: string;
  /**
   * Runs one batch. Returns one settled result per item, in the items' order, so one bad
   * item can be rejected without failing its neighbours.
   */
  run(items: In[]): Promise<PromiseSettledResult<Out>[]>;
  /**
   * How long the first item of a batch waits for company. 0 waits only for the rest of
   * the current event-loop turn. Under load batches form anyway: items that arrive while
   * every slot is busy go out together as soon as one frees. A function is asked each time
   * a batch starts to gather, for a wait that depends on the caller's load.
   */
  windowMs: number | (() => number);
  /** Items per batch at most; a full batch goes out at once. */
  maxBatch: number;
  /** Batches running at the same time at most. 1 keeps batches strictly ordered. */
  maxInFlight: number;
}

interface Pending<In, Out> {
  item: In;
  resolve(value: Out): void;
  reject(reason: unknown): void;
}

/**
 * Gathers concurrent calls into batches: the group-commit pattern. Each caller's promise
 * settles only when the batch that carried its item has run.
 */
export class MicroBatcher<In, Out> {
  private readonly options: MicroBatcherOptions<In, Out>;
  private pending: Pending<In, Out>[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private inFlight = 0;
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(options: MicroBatcherOptions<In, Out>) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new RangeError(`${options.name}: maxBatch must be a positive integer`);
    if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1) throw new RangeError(`${options.name}: maxInFlight must be a positive integer`);
    if (typeof options.windowMs === 'number' && !(options.windowMs >= 0)) throw new RangeError(`${options.name}: windowMs must be >= 0`);
    this.options = options;
  }

  /** Items waiting for a batch plus batches running. */
  get backlog(): number {
    return this.pending.length + this.inFlight;
  }

  add(item: In): Promise<Out> {
    if (this.closed) return Promise.reject(new Error(`${this.options.name} is closed`));
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.options.maxBatch) this.dispatch();
      else this.schedule();
    });
  }

  /** Sends everything pending now and waits until no batch is running. */
  async flush(): Promise<void> {
    this.dispatch();
    while (this.running.size > 0 || this.pending.length > 0) {
      await Promise.allSettled([...this.running]);
      this.dispatch();
    }
  }

  /** Refuses new items and flushes the rest. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private schedule(): void {
    if (this.timer || this.inFlight >= this.options.maxInFlight) return;
    const fire = () => {
      this.timer = undefined;
      this.dispatch();
    };
    const { windowMs } = this.options;
    const wait = typeof windowMs === 'number' ? windowMs : windowMs();
    this.timer = wait > 0 ? setTimeout(fire, wait) : setImmediate(fire);
  }

  private dispatch(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    while (this.inFlight < this.options.maxInFlight && this.pending.length > 0) {
      const batch = this.pending.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      const done = this.runBatch(batch).finally(() => {
        this.inFlight -= 1;
        this.running.delete(done);
        // Items that queued up while every slot was busy have waited long enough.
        if (this.pending.length > 0) this.dispatch();
      });
      this.running.add(done);
    }
  }

  private async runBatch(batch: Pending<In, Out>[]): Promise<void> {
    let results: PromiseSettledResult<Out>[];
    try {
      results = await this.options.run(batch.map((entry) => entry.item));
      if (results.length !== batch.length) {
        throw new Error(`${this.options.name}: batch of ${batch.length} returned ${results.length} results`);
      }
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    batch.forEach((entry, index) => {
      const result = results[index] as PromiseSettledResult<Out>;
      if (result.status === 'fulfilled') entry.resolve(result.value);
      else entry.reject(result.reason);
    });
  }
}
