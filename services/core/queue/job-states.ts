import type { Redis, Result } from 'ioredis';
import { bullJobKey } from './keys';

/** Where a job stands in Redis. `crash-looped`: BullMQ stopped delivering it because its runs kept ending with their worker. */
export type RedisJobState = 'missing' | 'held' | 'finished' | 'crash-looped';

/**
 * One letter per job hash, in the order of KEYS: m(issing), h(eld), f(inished) or
 * c(rash-looped). `defa` is BullMQ's deferred failure, set when a job stalled more than
 * maxStalledCount times.
 */
const JOB_STATES_SCRIPT = `
local states = {}
for index, key in ipairs(KEYS) do
  local fields = redis.call('HMGET', key, 'timestamp', 'finishedOn', 'defa')
  if not fields[1] then states[index] = 'm'
  elseif fields[3] then states[index] = 'c'
  elseif fields[2] then states[index] = 'f'
  else states[index] = 'h' end
end
return table.concat(states)
`;

const COMMAND = 'platformJobStates';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    platformJobStates(numberOfKeys: number, ...keys: string[]): Result<string, Context>;
  }
}

const STATE_OF_LETTER: Record<string, RedisJobState> = { m: 'missing', h: 'held', f: 'finished', c: 'crash-looped' };

/**
 * Jobs per script call. Redis runs a script without serving anyone else, so a call stays
 * around a millisecond even on a slow core; the calls of one lookup share a round trip.
 */
const JOBS_PER_CALL = 250;

/**
 * Where each job stands in Redis, in one pipelined round trip. A script reads the job
 * hashes and answers a letter per job: the sweep asks about every queued row older than
 * its grace, tens of thousands under a backlog, and a command per job cost the sweeping
 * process about eight times the CPU (bench/FINDINGS.md).
 */
export async function readJobStates(connection: Redis, prefix: string, jobIds: readonly string[]): Promise<Map<string, RedisJobState>> {
  const states = new Map<string, RedisJobState>();
  if (jobIds.length === 0) return states;
  // ioredis sends EVALSHA and falls back to EVAL when Redis lost its script cache (a restart).
  if (typeof connection.platformJobStates !== 'function') connection.defineCommand(COMMAND, { lua: JOB_STATES_SCRIPT });
  const pipeline = connection.pipeline();
  for (let start = 0; start < jobIds.length; start += JOBS_PER_CALL) {
    const keys = jobIds.slice(start, start + JOBS_PER_CALL).map((id) => bullJobKey(prefix, id));
    pipeline.platformJobStates(keys.length, ...keys);
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
