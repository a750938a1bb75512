import { LockWatch, type LockLapse } from '../../../services/worker/lock-watch';

/** A watch on a clock the test moves: ticks are called by hand, as its timer would at each tickMs (250 ms for a 2 s lock). */
function watchOn(lockDurationMs = 2_000) {
  let now = 1_000_000;
  const lapses: LockLapse[] = [];
  const watch = new LockWatch({ lockDurationMs, onLapse: (lapse) => lapses.push(lapse), now: () => now });
  /** Moves the clock in steps of `stepMs`, ticking after each, as a loop that keeps running would. */
  const run = (ms: number, stepMs = 250) => {
    for (let moved = 0; moved < ms; moved += stepMs) {
      now += stepMs;
      watch.tick();
    }
  };
  /** Moves the clock with no tick in between, as a loop that stands still would, then ticks once. */
  const standStill = (ms: number) => {
    now += ms;
    watch.tick();
  };
  return { watch, lapses, run, standStill };
}

describe('LockWatch', () => {
  it('says nothing of a lock renewed in time, however long its delivery runs', () => {
    const { watch, lapses, run } = watchOn();
    watch.taken('entry-1');
    for (let round = 0; round < 10; round += 1) {
      run(1_000);
      watch.renewed(['entry-1']);
    }
    expect(lapses).toEqual([]);
  });

  it("reports a lock not renewed for a lock's duration while the loop ran as Redis's lapse, once", () => {
    const { watch, lapses, run } = watchOn();
    watch.taken('entry-1');
    watch.taken('entry-2');
    run(1_000);
    watch.renewed(['entry-2']);
    run(1_000);
    expect(lapses).toEqual([{ entryIds: ['entry-1'], loopStood: false }]);
    run(5_000);
    expect(lapses).toEqual([
      { entryIds: ['entry-1'], loopStood: false },
      { entryIds: ['entry-2'], loopStood: false },
    ]);
  });

  it("reports a lock that ran out while the worker's loop stood still as the worker's doing", () => {
    const { watch, lapses, run, standStill } = watchOn();
    watch.taken('blocking');
    run(250);
    standStill(3_000);
    expect(lapses).toEqual([{ entryIds: ['blocking'], loopStood: true }]);
  });

  it('reports a lapse while the loop stood still for under half a lock in all as Redis\'s: the loop still sent a renewal in time', () => {
    const { watch, lapses, run, standStill } = watchOn();
    watch.taken('entry-1');
    run(250);
    // 900 ms without a tick: the loop stood 650 ms past its tick, a third of the 2 s lock.
    standStill(900);
    run(1_000);
    expect(lapses).toEqual([{ entryIds: ['entry-1'], loopStood: false }]);
  });

  it('adds up spells the loop stood still: shorter spells past half a lock in all make the lapse the loop\'s', () => {
    const { watch, lapses, run, standStill } = watchOn();
    watch.taken('entry-1');
    // Three spells of 450 ms past the tick, 1,350 ms of a 2 s lock.
    for (let spell = 0; spell < 3; spell += 1) {
      standStill(700);
      run(1);
    }
    run(250);
    expect(lapses).toEqual([{ entryIds: ['entry-1'], loopStood: true }]);
  });

  it('does not blame the loop for a stand-still before the lock was last renewed', () => {
    const { watch, lapses, run, standStill } = watchOn();
    watch.taken('entry-1');
    standStill(1_500);
    watch.renewed(['entry-1']);
    run(2_000);
    expect(lapses).toEqual([{ entryIds: ['entry-1'], loopStood: false }]);
  });

  it('forgets a released entry, and a renewal of an entry it does not hold', () => {
    const { watch, lapses, run } = watchOn();
    watch.taken('entry-1');
    watch.released('entry-1');
    watch.renewed(['entry-2']);
    run(5_000);
    expect(lapses).toEqual([]);
  });

  it('refuses a lock duration that is not positive', () => {
    expect(() => new LockWatch({ lockDurationMs: 0, onLapse: () => undefined })).toThrow(RangeError);
  });
});
