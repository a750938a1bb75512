import * as parse from '../args';
import type { RuntimeAction } from '../context';
import { UsageError, printJson, printTable } from '../output';

export function listDeadLetters(options: { limit?: string; cursor?: string; json?: boolean }): RuntimeAction {
  const query = { limit: parse.limit(options.limit, 20), cursor: parse.cursor(options.cursor) };
  return async (core) => {
    const page = await core.admin.deadLetters(query);
    if (options.json) {
      printJson(page);
      return 0;
    }
    printTable(
      page.items.map((job) => ({ id: job.id, type: job.type, attempts: `${job.attempts}/${job.maxAttempts}`, failed: job.finishedAt, error: job.error })),
      ['id', 'type', 'attempts', 'failed', 'error'],
    );
    if (page.nextCursor) process.stdout.write(`next page: --cursor ${page.nextCursor}\n`);
    return 0;
  };
}

/**
 * Replays the named jobs, or with --all every dead letter (newest first, up to --limit).
 * Replays one at a time and reports each, so a partial failure says what was done.
 */
export function replayDeadLetters(ids: string[], options: { all?: boolean; limit?: string; json?: boolean }): RuntimeAction {
  if (options.all && ids.length > 0) throw new UsageError('give job ids or --all, not both');
  if (!options.all && ids.length === 0) throw new UsageError('give one or more job ids, or --all');
  const named = options.all ? undefined : ids.map((id) => parse.uuid(id));
  const allLimit = parse.limit(options.limit, 100);
  return async (core) => {
    const targets = named ?? (await core.admin.deadLetters({ limit: allLimit })).items.map((job) => job.id);
    const outcomes: { id: string; replayed: boolean; error?: string }[] = [];
    for (const id of targets) {
      try {
        await core.admin.replay(id);
        outcomes.push({ id, replayed: true });
      } catch (error) {
        outcomes.push({ id, replayed: false, error: error instanceof Error ? error.message : String(error) });
      }
    }
    if (options.json) printJson({ outcomes });
    else printTable(outcomes, ['id', 'replayed', 'error']);
    return outcomes.every((outcome) => outcome.replayed) ? 0 : 1;
  };
}
