import { EXCUSE_WITHDRAW_RETRY_MS, RecoveryLane, type RecoveryLaneOptions } from '../../../services/worker/recovery-lane';

const silentLog = { info: () => undefined, warn: () => undefined } as unknown as RecoveryLaneOptions['log'];

/**
 * A lane over a relay whose promote answers, per entry, whether the entry was still parked in
 * delayed; `others` is the count of entries running beside the suspect, and `said` records
 * the excuses and the fetching switches in order.
 */
function laneWith(stillParked: (entryId: string) => boolean = () => true, overrides: Partial<RecoveryLaneOptions> = {}) {
  const promoted: string[] = [];
  const said: string[] = [];
  const state = { others: 0 };
  const lane = new RecoveryLane({
    relay: {
      promote: async (entryId: string) => {
        promoted.push(entryId);
        return stillParked(entryId);
      },
    },
    excusedRuns: {
      record: async (jobId) => void said.push(`excuse ${jobId}`),
      withdraw: async (jobId) => void said.push(`withdraw ${jobId}`),
    },
    othersRunning: () => state.others,
    fetching: (allowed) => void said.push(allowed ? 'fetch on' : 'fetch off'),
    log: silentLog,
    ...overrides,
  });
  return { lane, promoted, said, state };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

const postgresAway = async (): Promise<never> => {
  throw new Error('PostgreSQL is away');
};

describe('RecoveryLane', () => {
  it('lets one suspect in at a time', () => {
    const { lane } = laneWith();
    expect(lane.enter('a')).toBe(true);
    expect(lane.enter('b')).toBe(false);
    lane.leave();
    expect(lane.enter('b')).toBe(true);
  });

  it('calls the first entry parked back when it frees, and only that one', async () => {
    const { lane, promoted } = laneWith();
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b']);
  });

  it('goes on to the next parked entry when one is no longer parked (taken elsewhere, or its delay ended)', async () => {
    const { lane, promoted } = laneWith((entryId) => entryId === 'c');
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.park('d');
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b', 'c']);
  });

  it('forgets a parked entry that came back and took the lane on its own', async () => {
    const { lane, promoted } = laneWith();
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.leave();
    // c's delay ended before the lane called it: it reaches this worker and takes the lane.
    expect(lane.enter('c')).toBe(true);
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b']);
  });

  it('stops calling parked entries back once the lane is taken again', async () => {
    const { lane, promoted } = laneWith(() => false);
    lane.enter('a');
    lane.park('b');
    lane.park('c');
    lane.leave();
    // While b's promote is under way, another suspect takes the lane.
    expect(lane.enter('x')).toBe(true);
    await settle();
    expect(promoted).toEqual(['b']);
    lane.leave();
    await settle();
    expect(promoted).toEqual(['b', 'c']);
  });

  it('ignores entries without an id', async () => {
    const { lane, promoted } = laneWith();
    expect(lane.enter(undefined)).toBe(true);
    lane.park(undefined);
    lane.leave();
    await settle();
    expect(promoted).toEqual([]);
  });

  it('stops fetching while a suspect holds it, and calls back every entry held back meanwhile before the next suspect', async () => {
    const { lane, promoted, said } = laneWith();
    lane.enter('a');
    expect(lane.isHeld).toBe(true);
    lane.park('s1');
    lane.holdBack('f1');
    lane.holdBack('f2');
    lane.leave();
    expect(lane.isHeld).toBe(false);
    await settle();
    expect(said).toEqual(['fetch off', 'fetch on']);
    expect(promoted).toEqual(['f1', 'f2', 's1']);
  });

  it('calls a suspect back at once when the lane was left before the suspect was noted as parked', async () => {
    const { lane, promoted } = laneWith();
    lane.enter('a');
    // b found the lane held and is being moved to delayed meanwhile; a is done before b is noted.
    lane.leave();
    lane.park('b');
    await settle();
    expect(promoted).toEqual(['b']);
  });

  it('calls back at once an entry held back after the lane was left', async () => {
    const { lane, promoted } = laneWith();
    lane.enter('a');
    lane.leave();
    lane.holdBack('f1');
    await settle();
    expect(promoted).toEqual(['f1']);
  });

  it('keeps a suspect noted after the lane was taken again for that lane\'s end', async () => {
    const { lane, promoted } = laneWith();
    lane.enter('a');
    lane.leave();
    lane.enter('x');
    lane.park('b');
    lane.holdBack('f1');
    await settle();
    expect(promoted).toEqual([]);
    lane.leave();
    await settle();
    expect(promoted).toEqual(['f1', 'b']);
  });

  it('runs a suspect at once, without an excuse, when nothing else runs', async () => {
    const { lane, said } = laneWith();
    lane.enter('a');
    await expect(lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => undefined, async () => 'done')).resolves.toEqual({ ran: true, value: 'done' });
    expect(said).toEqual(['fetch off']);
  });

  it('has a suspect wait, its run excused, until the entries beside it ended, and takes the excuse back before it runs', async () => {
    const { lane, said, state } = laneWith();
    state.others = 2;
    lane.enter('a');
    const alone = lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => undefined, async () => {
      said.push('run');
      return 'done';
    });
    await settle();
    state.others = 1;
    lane.entryEnded();
    await settle();
    expect(said).toEqual(['fetch off', 'excuse job-a']);
    state.others = 0;
    lane.entryEnded();
    await expect(alone).resolves.toEqual({ ran: true, value: 'done' });
    expect(said).toEqual(['fetch off', 'excuse job-a', 'withdraw job-a', 'run']);
  });

  it('does not run a suspect whose wait could not be excused', async () => {
    const run = jest.fn(async () => 'done');
    const { lane } = laneWith(undefined, { othersRunning: () => 1, excusedRuns: { record: postgresAway, withdraw: async () => undefined } });
    lane.enter('a');
    await expect(lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => undefined, run)).resolves.toEqual({ ran: false, why: 'later' });
    expect(run).not.toHaveBeenCalled();
  });

  describe('when PostgreSQL refuses to take the excuse back', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
    afterEach(() => jest.useRealTimers());

    /** A lane whose first `refusals` withdrawals are refused; `attempts` counts them. */
    function laneRefusingWithdrawals(refusals: number) {
      const withdrawals = { attempts: 0 };
      const said: string[] = [];
      const fixture = laneWith(undefined, {
        excusedRuns: {
          record: async (jobId) => void said.push(`excuse ${jobId}`),
          withdraw: async (jobId) => {
            withdrawals.attempts += 1;
            if (withdrawals.attempts <= refusals) await postgresAway();
            said.push(`withdraw ${jobId}`);
          },
        },
      });
      return { ...fixture, said, withdrawals };
    }

    it('keeps the lane and tries again until the excuse is taken back, then runs the suspect', async () => {
      const { lane, state, said, withdrawals } = laneRefusingWithdrawals(2);
      state.others = 1;
      lane.enter('a');
      const alone = lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => undefined, async () => {
        said.push('run');
        return 'done';
      });
      state.others = 0;
      lane.entryEnded();
      await settle();
      expect(withdrawals.attempts).toBe(1);
      expect(lane.isHeld).toBe(true);
      await jest.advanceTimersByTimeAsync(EXCUSE_WITHDRAW_RETRY_MS);
      expect(withdrawals.attempts).toBe(2);
      await jest.advanceTimersByTimeAsync(EXCUSE_WITHDRAW_RETRY_MS);
      await expect(alone).resolves.toEqual({ ran: true, value: 'done' });
      expect(said).toEqual(['excuse job-a', 'withdraw job-a', 'run']);
    });

    it('leaves the entry of a stopping worker to lapse, the excuse standing for that run, instead of parking it with the excuse on its row', async () => {
      const { lane, state, withdrawals } = laneRefusingWithdrawals(Infinity);
      state.others = 1;
      lane.enter('a');
      let stopping = false;
      const run = jest.fn(async () => 'done');
      const alone = lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => (stopping ? 'later' : undefined), run);
      state.others = 0;
      lane.entryEnded();
      await settle();
      stopping = true;
      await jest.advanceTimersByTimeAsync(EXCUSE_WITHDRAW_RETRY_MS);
      await expect(alone).resolves.toEqual({ ran: false, why: 'lapsing' });
      expect(withdrawals.attempts).toBe(2);
      expect(run).not.toHaveBeenCalled();
    });

    it('stops trying once the entry is lost, the excuse standing for the run its lost lock ends', async () => {
      const { lane, state, withdrawals } = laneRefusingWithdrawals(Infinity);
      state.others = 1;
      lane.enter('a');
      let lost = false;
      const run = jest.fn(async () => 'done');
      const alone = lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => (lost ? 'lost' : undefined), run);
      state.others = 0;
      lane.entryEnded();
      await settle();
      expect(lane.excuses({ jobId: 'job-a', entryAddedAt: 1 })).toBe(true);
      lost = true;
      await jest.advanceTimersByTimeAsync(EXCUSE_WITHDRAW_RETRY_MS);
      await expect(alone).resolves.toEqual({ ran: false, why: 'lost' });
      expect(withdrawals.attempts).toBe(1);
      expect(run).not.toHaveBeenCalled();
    });
  });

  it('does not run a suspect its worker no longer wants to run once the wait is over (stopping)', async () => {
    const { lane, state } = laneWith();
    state.others = 1;
    lane.enter('a');
    const run = jest.fn(async () => 'done');
    let stopping = false;
    const alone = lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => (stopping ? 'later' : undefined), run);
    stopping = true;
    state.others = 0;
    lane.entryEnded();
    await expect(alone).resolves.toEqual({ ran: false, why: 'later' });
    expect(run).not.toHaveBeenCalled();
  });

  it('does not run a suspect whose entry was lost while it waited, and keeps its excuse for the run its lost lock ends (the runner records no lapse for it meanwhile)', async () => {
    const { lane, state, said } = laneWith();
    state.others = 1;
    lane.enter('a');
    const run = jest.fn(async () => 'done');
    const alone = lane.runAlone({ jobId: 'job-a', entryAddedAt: 1 }, () => 'lost', run);
    await settle();
    expect(lane.excuses({ jobId: 'job-a', entryAddedAt: 1 })).toBe(true);
    expect(lane.excuses({ jobId: 'job-a', entryAddedAt: 2 })).toBe(false);
    state.others = 0;
    lane.entryEnded();
    await expect(alone).resolves.toEqual({ ran: false, why: 'lost' });
    expect(run).not.toHaveBeenCalled();
    expect(said).toEqual(['fetch off', 'excuse job-a']);
    expect(lane.excuses({ jobId: 'job-a', entryAddedAt: 1 })).toBe(false);
  });
});
