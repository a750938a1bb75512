import type { Redis, Result } from 'ioredis';
import { bullJobKey, sharedEntriesKey } from './keys';

/** Where a job stands in Redis. `crash-looped`: BullMQ stopped delivering it because its runs kept ending with their worker. */
export type RedisJobState = 'missing' | 'held' | 'finished' | 'crash-looped';

/**
 * One letter per job, in the order of KEYS[2..]: m(issing), h(eld), f(inished) or
 * c(rash-looped). A job without an entry of its own is looked up in the shared-entry map
 * (KEYS[1]) and stands where the entry that carries it stands; ARGV[1] is the prefix of
 * entry keys and ARGV[i] the job id of KEYS[i]. `defa` is BullMQ's deferred failure, set
 * when an entry stalled more than maxStalledCount times; the runner splits such a shared
 * entry instead of dead-lettering its jobs, so for them it only means the entry is done.
 */
const JOB_STATES_SCRIPT = `
local function stateOf(key)
  local fields = redis.call('HMGET', key, 'timestamp', 'finishedOn', 'defa')
  if not fields[1] then return 'm' end
  if fields[3] then return 'c' end
  if fields[2] then return 'f' end
  return 'h'
end
local states = {}
for index = 2, #KEYS do
  local state = stateOf(KEYS[index])
  if state == 'm' then
    local entry = redis.call('HGET', KEYS[1], ARGV[index])
    if entry then
      state = stateOf(ARGV[1] .. entry)
      if state == 'c' then state = 'f' end
    end
  end
  states[index - 1] = state
end
return table.concat(states)
`;

/**
 * One HSCAN page of the shared-entry map (KEYS[1]) from cursor ARGV[2]: fields whose entry
 * (key ARGV[1] .. entry id) is gone or finished are dropped. Answers the next cursor and
 * how many fields went.
 */
const PRUNE_SHARED_ENTRIES_SCRIPT = `
local scan = redis.call('HSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local fields = scan[2]
local gone = {}
for index = 1, #fields, 2 do
  local entry = redis.call('HMGET', ARGV[1] .. fields[index + 1], 'timestamp', 'finishedOn')
  if not entry[1] or entry[2] then gone[#gone + 1] = fields[index] end
end
if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
return { scan[1], #gone }
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    platformJobStates(numberOfKeys: number, ...keysAndArgs: string[]): Result<string, Context>;
    platformPruneSharedEntries(numberOfKeys: number, ...keysAndArgs: string[]): Result<[string, number], Context>;
  }
}

const STATE_OF_LETTER: Record<string, RedisJobState> = { m: 'missing', h: 'held', f: 'finished', c: 'crash-looped' };

/**
 * Jobs per script call. Redis runs a script without serving anyone else, so a call stays
 * around a millisecond even on a slow core; the calls of one lookup share a round trip.
 */
const JOBS_PER_CALL = 250;

/**
 * Where each job stands in Redis, in one pipelined round trip. A script reads the entry
 * hashes and answers a letter per job: the sweep asks about every queued row older than
 * its grace, tens of thousands under a backlog, and a command per job cost the sweeping
 * process about eight times the CPU (bench/FINDINGS.md).
 */
export async function readJobStates(connection: Redis, prefix: string, jobIds: readonly string[]): Promise<Map<string, RedisJobState>> {
  const states = new Map<string, RedisJobState>();
  if (jobIds.length === 0) return states;
  // ioredis sends EVALSHA and falls back to EVAL when Redis lost its script cache (a restart).
  if (typeof connection.platformJobStates !== 'function') connection.defineCommand('platformJobStates', { lua: JOB_STATES_SCRIPT });
  const pipeline = connection.pipeline();
  for (let start = 0; start < jobIds.length; start += JOBS_PER_CALL) {
    const ids = jobIds.slice(start, start + JOBS_PER_CALL);
    // ARGV lines up with KEYS: ARGV[1] is the entry key prefix, ARGV[i] the id of KEYS[i].
    pipeline.platformJobStates(ids.length + 1, sharedEntriesKey(prefix), ...ids.map((id) => bullJobKey(prefix, id)), bullJobKey(prefix, ''), ...ids);
  }
  const replies = (await pipeline.exec()) ?? [];
  let position = 0;
  for (let call = 0; call * JOBS_PER_CALL < jobIds.length; call += 1) {
    const [error, letters] = replies[call] ?? [new Error('no reply from Redis'), null];
    if (error) throw error;
    for (const letter of String(letters)) {
      const state = STATE_OF_LETTER[letter];
      const id = jobIds[position];
      if (state === undefined || id === undefined) throw new Error(`unexpected job state reply from Redis: ${String(letters).slice(0, 40)}`);
      states.set(id, state);
      position += 1;
    }
  }
  if (position !== jobIds.length) throw new Error(`Redis answered for ${position} of ${jobIds.length} jobs`);
  return states;
}

/**
 * When each job's own entry was added (BullMQ's `timestamp`, ms since the epoch, by the
 * clock of the process that added it), in one pipelined round trip; absent for a job
 * without an entry of its own.
 */
export async function readEntriesAddedAt(connection: Redis, prefix: string, jobIds: readonly string[]): Promise<Map<string, number>> {
  const addedAt = new Map<string, number>();
  if (jobIds.length === 0) return addedAt;
  const pipeline = connection.pipeline();
  for (const id of jobIds) pipeline.hget(bullJobKey(prefix, id), 'timestamp');
  const replies = (await pipeline.exec()) ?? [];
  jobIds.forEach((id, index) => {
    const [error, value] = replies[index] ?? [new Error('no reply from Redis'), null];
    if (error) throw error;
    const ms = Number(value);
    if (value !== null && Number.isFinite(ms)) addedAt.set(id, ms);
  });
  return addedAt;
}

/**
 * Drops map fields of entries that are done (see sharedEntriesKey), one page from `cursor`.
 * The runner forgets an entry's jobs as it completes the entry; a field stays when that
 * did not reach Redis, when it ran before the relay's write of the same entry's fields
 * landed (a quick entry under load), or when the entry failed; without this such fields
 * would stay for good. A field of a job still carried always points at an entry that is
 * there and not finished, because the relay writes the map only once the entry is in
 * (lookups meanwhile read "missing" once, which the sweep's second look covers). Answers
 * the cursor to go on from ('0' once the map was walked through).
 */
export async function pruneSharedEntries(connection: Redis, prefix: string, cursor: string, pageSize: number): Promise<{ cursor: string; pruned: number }> {
  if (typeof connection.platformPruneSharedEntries !== 'function') connection.defineCommand('platformPruneSharedEntries', { lua: PRUNE_SHARED_ENTRIES_SCRIPT });
  const [next, pruned] = await connection.platformPruneSharedEntries(1, sharedEntriesKey(prefix), bullJobKey(prefix, ''), cursor, String(pageSize));
  return { cursor: String(next), pruned: Number(pruned) };
}
