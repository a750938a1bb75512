import { Redis } from 'ioredis';

/** Commands Redis has run since its start (or its last CONFIG RESETSTAT), from INFO commandstats. */
export interface RedisCommandCounts {
  all: number;
  /** EVAL/EVALSHA/FCALL calls: each is one BullMQ script (add, move to active, move to finished…). */
  scripts: number;
}

const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);

/** Parses INFO commandstats. Commands a script runs are counted too, inside `all`. */
export function parseCommandStats(info: string): RedisCommandCounts {
  const counts: RedisCommandCounts = { all: 0, scripts: 0 };
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (!match) continue;
    const calls = Number(match[2]);
    counts.all += calls;
    if (SCRIPT_COMMANDS.has(match[1] ?? '')) counts.scripts += calls;
  }
  return counts;
}

export async function redisCommandCounts(redisUrl: string): Promise<RedisCommandCounts> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await connection.connect();
    return parseCommandStats(await connection.info('commandstats'));
  } finally {
    connection.disconnect();
  }
}

/** Commands per job between two readings (the readings' own INFO calls are negligible). */
export function commandsPerJob(from: RedisCommandCounts, to: RedisCommandCounts, jobs: number): RedisCommandCounts {
  return jobs > 0 ? { all: (to.all - from.all) / jobs, scripts: (to.scripts - from.scripts) / jobs } : { all: 0, scripts: 0 };
}
