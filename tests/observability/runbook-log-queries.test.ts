/**
 * The LogQL a runbook gives must find the lines it talks about. RedisUnreachable's query
 * looked for "Command timed out", but a hand-off to a hung Redis fails with the relay's own
 * deadline ("Redis addBulk timed out after 5000 ms", seen in a drill with Redis paused under
 * `npm start`), so its `enqueue failed` lines were not found.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { withinEnqueueTimeout } from '../../services/core/queue/relay/options';

const RUNBOOKS = path.resolve(__dirname, '../../runbooks');

/** The strings of the line filters (`|= "a" or "b"`) of every LogQL block of a page. */
function lineFilters(page: string): string[] {
  const text = readFileSync(path.join(RUNBOOKS, page), 'utf8');
  const blocks = [...text.matchAll(/```logql\n([\s\S]*?)```/g)].map((match) => match[1] as string);
  return blocks.flatMap((block) => [...block.matchAll(/(?:\|=|\bor)\s*"([^"]*)"/g)].map((match) => match[1] as string));
}

describe('runbook log queries', () => {
  it('RedisUnreachable finds a hand-off to a hung Redis that timed out, as well as a command that did', async () => {
    const filters = lineFilters('RedisUnreachable.md');
    const handOff = await withinEnqueueTimeout({ enqueueTimeoutMs: 10 }, new Promise<never>(() => undefined), 'addBulk').catch((error: Error) => error.message);
    // ioredis's message for a command past its commandTimeout.
    for (const message of [handOff, 'Command timed out']) {
      expect({ message, found: filters.some((filter) => message.includes(filter)) }).toEqual({ message, found: true });
    }
  });
});
