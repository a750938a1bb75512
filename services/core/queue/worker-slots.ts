import type { Redis, Result } from 'ioredis';
import { bullJobKey, workerConnectionName, workerHeartbeatKey, workerSlotsKey } from './keys';

/**
 * What a worker records in its slot: its own id (the heartbeat's field), the id BullMQ's
 * worker puts in front of every lock token it takes (`<lockOwner>:<n>`), and when it claimed.
 */
export interface SlotHolder {
  workerId: string;
  lockOwner: string;
  claimedAt: number;
}

/**
 * KEYS: 1 slot hash, 2 the queue's active list, 3 its stalled set, 4 its stalled-check key,
 * 5 the heartbeat hash.
 * ARGV: 1 slot, 2 the claimant's SlotHolder (JSON), 3 the prefix of job keys, 4 the record
 * the claimant found in the slot and saw no live connection for ('' when the slot was free).
 *
 * When the slot holds another record by now, nothing changes and the answer's count is -1:
 * the claimant looks again. Otherwise the claimant takes the slot; whoever held it before
 * has ended. Its heartbeat goes, so
 * `platform doctor` does not count it among the live workers for as long as the heartbeat
 * would have looked fresh. Every lock still held
 * under that holder's lock owner belongs to a run that is over. Those locks go, and the jobs
 * join the stalled set with the stalled check's rate limit lifted: BullMQ's next check moves
 * them back to wait exactly as it moves a job whose lock lapsed, counting the interrupted
 * run (so a job that kills its worker is still dead-lettered after maxStalledCount runs).
 * Active jobs whose lock is gone already join them: a holder that hung past its locks before
 * it was killed (a liveness probe's kill) leaves no token to know its jobs by, and BullMQ
 * would otherwise move them only at its second check from now (a check marks, the next one
 * moves). Whoever ran such a job let its lock lapse, so that check would move it anyway.
 * Answers the previous holder (or nil) and how many jobs were released.
 */
const CLAIM_SLOT_SCRIPT = `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
if (previous or '') ~= ARGV[4] then return { previous, -1 } end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not previous then return { false, 0 } end
local decoded, holder = pcall(cjson.decode, previous)
if not decoded or type(holder) ~= 'table' then return { previous, 0 } end
if type(holder.workerId) == 'string' then redis.call('HDEL', KEYS[5], holder.workerId) end
if type(holder.lockOwner) ~= 'string' or holder.lockOwner == '' then return { previous, 0 } end
local owner = holder.lockOwner .. ':'
local released = 0
for _, jobId in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local lockKey = ARGV[3] .. jobId .. ':lock'
  local token = redis.call('GET', lockKey)
  if not token then
    redis.call('SADD', KEYS[3], jobId)
    released = released + 1
  elseif string.sub(token, 1, #owner) == owner then
    redis.call('DEL', lockKey)
    redis.call('SADD', KEYS[3], jobId)
    released = released + 1
  end
end
if released > 0 then redis.call('DEL', KEYS[4]) end
return { previous, released }
`;

/** KEYS: 1 slot hash. ARGV: 1 slot, 2 the holder's value. Deletes the field only while it still holds that value. */
const LEAVE_SLOT_SCRIPT = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

/**
 * KEYS: 1 slot hash, 2 heartbeat hash. ARGV: 1 claims before this time (ms) may be forgotten.
 * Forgets slots whose holder claimed before ARGV[1] and has no heartbeat any more: the
 * worker of a pod that was deleted while it was down (its successor, in another pod, has
 * another slot). A heartbeat outlives its worker by WORKER_HEARTBEAT_FORGET_MS.
 */
const FORGET_SLOTS_SCRIPT = `
local slots = redis.call('HGETALL', KEYS[1])
local forgotten = 0
for index = 1, #slots, 2 do
  local decoded, holder = pcall(cjson.decode, slots[index + 1])
  local claimedAt = decoded and type(holder) == 'table' and tonumber(holder.claimedAt) or 0
  local workerId = decoded and type(holder) == 'table' and type(holder.workerId) == 'string' and holder.workerId or ''
  if claimedAt < tonumber(ARGV[1]) and redis.call('HEXISTS', KEYS[2], workerId) == 0 then
    redis.call('HDEL', KEYS[1], slots[index])
    forgotten = forgotten + 1
  end
end
return forgotten
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    platformClaimWorkerSlot(numberOfKeys: number, ...keysAndArgs: string[]): Result<[string | null, number], Context>;
    platformLeaveWorkerSlot(numberOfKeys: number, ...keysAndArgs: string[]): Result<number, Context>;
    platformForgetWorkerSlots(numberOfKeys: number, ...keysAndArgs: string[]): Result<number, Context>;
  }
}

function defineSlotCommands(connection: Redis): void {
  // ioredis sends EVALSHA and falls back to EVAL when Redis lost its script cache (a restart).
  if (typeof connection.platformClaimWorkerSlot !== 'function') connection.defineCommand('platformClaimWorkerSlot', { lua: CLAIM_SLOT_SCRIPT });
  if (typeof connection.platformLeaveWorkerSlot !== 'function') connection.defineCommand('platformLeaveWorkerSlot', { lua: LEAVE_SLOT_SCRIPT });
  if (typeof connection.platformForgetWorkerSlots !== 'function') connection.defineCommand('platformForgetWorkerSlots', { lua: FORGET_SLOTS_SCRIPT });
}

function parseHolder(value: string | null): SlotHolder | undefined {
  if (value === null) return undefined;
  try {
    const parsed = JSON.parse(value) as Partial<SlotHolder>;
    if (typeof parsed.workerId === 'string' && typeof parsed.lockOwner === 'string' && typeof parsed.claimedAt === 'number') {
      return { workerId: parsed.workerId, lockOwner: parsed.lockOwner, claimedAt: parsed.claimedAt };
    }
  } catch {
    // Not ours to read: reported as an unreadable holder below.
  }
  return undefined;
}

export interface SlotClaim {
  /**
   * False when the slot's holder is a process still connected to Redis (two live workers
   * given one WORKER_SLOT): the claimant neither took the slot nor released anything.
   */
  taken: boolean;
  /** Who held the slot before, when anyone did and its record could be read (the live holder when not taken). */
  predecessor?: SlotHolder;
  /** True when the slot held a record this code cannot read (nothing was released for it). */
  unreadablePredecessor: boolean;
  /** Jobs whose locks the predecessor left behind, now handed to BullMQ's stalled check. */
  released: number;
  /**
   * Why Redis could not say whether the predecessor is still connected (a server that
   * refuses CLIENT LIST): the slot was taken on its contract alone, that one process runs
   * in it at a time.
   */
  livenessUnknown?: string;
}

/** How many times a claim looks again when the slot changed hands while it looked. */
const CLAIM_ATTEMPTS = 3;

/** The names of the connections in a CLIENT LIST reply (a name holds no spaces). */
export function connectionNames(clientList: string): Set<string> {
  const names = new Set<string>();
  for (const line of clientList.split(/\r?\n/)) {
    const field = line.split(' ').find((pair) => pair.startsWith('name='));
    if (field && field.length > 'name='.length) names.add(field.slice('name='.length));
  }
  return names;
}

/**
 * A worker slot is a place only one worker process runs in at a time: a Kubernetes pod
 * (its uid), the local run's one worker. A process that starts in a slot knows that the one
 * before it there has ended (the kubelet starts a container again only after the last one
 * exited; the local supervisor, after it saw the exit), so the jobs that process was running
 * need not wait for their locks to lapse, as they must when nothing says whether a worker
 * is gone. Two live processes given one slot (a misconfiguration) would each hand the
 * other's running jobs out again, so a claim checks first that the holder it replaces has no
 * connection left (each worker names its own); `holder` lets a running worker notice a
 * claim that could not check.
 */
export class WorkerSlots {
  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
  ) {
    defineSlotCommands(connection);
  }

  /**
   * Takes `slot` for `holder` unless a process still connected to Redis holds it; then forgets
   * the predecessor's heartbeat and releases the jobs it left running (see CLAIM_SLOT_SCRIPT).
   * A process that was killed has no connection left: the kernel closes its sockets.
   */
  async claim(slot: string, holder: SlotHolder): Promise<SlotClaim> {
    const jobKeyPrefix = bullJobKey(this.prefix, '');
    for (let attempt = 1; ; attempt += 1) {
      const found = await this.connection.hget(workerSlotsKey(this.prefix), slot);
      const standing = parseHolder(found);
      let livenessUnknown: string | undefined;
      if (standing && standing.workerId !== holder.workerId) {
        const connected = await this.isConnected(standing);
        if (connected === true) return { taken: false, predecessor: standing, unreadablePredecessor: false, released: 0 };
        if (connected !== false) livenessUnknown = connected.unknown;
      }
      const [previous, released] = await this.connection.platformClaimWorkerSlot(
        5,
        workerSlotsKey(this.prefix),
        `${jobKeyPrefix}active`,
        `${jobKeyPrefix}stalled`,
        `${jobKeyPrefix}stalled-check`,
        workerHeartbeatKey(this.prefix),
        slot,
        JSON.stringify(holder),
        jobKeyPrefix,
        found ?? '',
      );
      if (Number(released) < 0) {
        if (attempt < CLAIM_ATTEMPTS) continue;
        throw new Error(`worker slot ${slot} changed hands ${CLAIM_ATTEMPTS} times while this worker claimed it: another process keeps claiming it`);
      }
      const predecessor = parseHolder(previous);
      return {
        taken: true,
        ...(predecessor ? { predecessor } : {}),
        unreadablePredecessor: previous !== null && !predecessor,
        released: Number(released),
        ...(livenessUnknown !== undefined ? { livenessUnknown } : {}),
      };
    }
  }

  /** Whether the process that recorded `holder` is still connected to Redis, or why Redis could not say. */
  private async isConnected(holder: SlotHolder): Promise<boolean | { unknown: string }> {
    let clientList: unknown;
    try {
      clientList = await this.connection.call('CLIENT', 'LIST', 'TYPE', 'normal');
    } catch (error) {
      return { unknown: error instanceof Error ? error.message : String(error) };
    }
    if (typeof clientList !== 'string') return { unknown: 'CLIENT LIST answered something other than text' };
    return connectionNames(clientList).has(workerConnectionName(holder.workerId));
  }

  /** Whether `slot` holds any record, one this code cannot read included. */
  async recorded(slot: string): Promise<boolean> {
    return (await this.connection.hexists(workerSlotsKey(this.prefix), slot)) === 1;
  }

  /** Who holds `slot` now. */
  async holder(slot: string): Promise<SlotHolder | undefined> {
    return parseHolder(await this.connection.hget(workerSlotsKey(this.prefix), slot));
  }

  /** Gives `slot` up at a clean stop, unless another process has claimed it since. */
  async leave(slot: string, holder: SlotHolder): Promise<void> {
    await this.connection.platformLeaveWorkerSlot(1, workerSlotsKey(this.prefix), slot, JSON.stringify(holder));
  }

  /** Forgets slots claimed before `claimedBefore` whose holder no longer has a heartbeat; answers how many. */
  async forgetAbandoned(claimedBefore: number): Promise<number> {
    return Number(await this.connection.platformForgetWorkerSlots(2, workerSlotsKey(this.prefix), workerHeartbeatKey(this.prefix), String(claimedBefore)));
  }
}
