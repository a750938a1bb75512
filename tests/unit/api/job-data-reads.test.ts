import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { createLogger } from '../../../services/core/logger';
import { jobDataAllowance, jobDataReadLimit } from '../../../services/api/middleware/job-data-reads';
import { provideRequestLogger, requestContext } from '../../../services/api/middleware/request-context';
import { createProblemHandler } from '../../../services/api/problem';

interface HeldRead {
  user: string;
  release: (bytes: number) => void;
}

/**
 * The middleware in front of a handler the test controls: each read waits in the handler
 * until the test releases it with the number of bytes to send, so "at once" is exact
 * however slow the machine (the service test of the same limit is a burst of real reads).
 */
async function readServer(bytesPerSecond: number): Promise<{ server: Server; base: string; entered: HeldRead[]; nextEntered: () => Promise<HeldRead> }> {
  const entered: HeldRead[] = [];
  const waiting: ((read: HeldRead) => void)[] = [];
  const app = express();
  provideRequestLogger(app, createLogger({ service: 'job-data-reads-test', destination: { write: () => undefined } }));
  app.use(requestContext);
  const limit = jobDataReadLimit({ keyPrefix: 'test:job-data', bytesPerSecond }, (req) => String(req.headers['x-user']))((req) =>
    req.query.page !== undefined ? { upToBytes: Number(req.query.page) } : req.query.summaries !== undefined ? 'none' : 'whole',
  );
  app.get('/read', limit, (req, res) => {
    const allowance = jobDataAllowance(req);
    if (allowance !== undefined) res.setHeader('x-allowance', String(allowance));
    if (req.query.send !== undefined) {
      res.type('text/plain').send('d'.repeat(Number(req.query.send)));
      return;
    }
    const read: HeldRead = { user: String(req.headers['x-user']), release: (bytes) => res.type('text/plain').send('d'.repeat(bytes)) };
    const waiter = waiting.shift();
    if (waiter) waiter(read);
    else entered.push(read);
  });
  app.use(createProblemHandler());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const nextEntered = (): Promise<HeldRead> => {
    const read = entered.shift();
    return read ? Promise.resolve(read) : new Promise((resolve) => waiting.push(resolve));
  };
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, entered, nextEntered };
}

interface ReadOptions {
  /** A page of at most this many bytes; without it (or `summaries`), one whole job. */
  page?: number;
  /** Summaries only. */
  summaries?: true;
  /** Answer with this many bytes at once; without it, the read waits in the handler until released. */
  send?: number;
}

async function read(base: string, user: string, options: ReadOptions = {}): Promise<{ status: number; retryAfter: string | null; detail?: string; length: number; allowance?: number }> {
  const query = new URLSearchParams();
  if (options.page !== undefined) query.set('page', String(options.page));
  if (options.summaries) query.set('summaries', '');
  if (options.send !== undefined) query.set('send', String(options.send));
  const response = await fetch(`${base}/read?${query.toString()}`, { headers: { 'x-user': user } });
  const text = await response.text();
  const detail = response.status === 429 ? (JSON.parse(text) as { detail: string }).detail : undefined;
  const allowance = response.headers.get('x-allowance');
  return { status: response.status, retryAfter: response.headers.get('retry-after'), detail, length: text.length, allowance: allowance === null ? undefined : Number(allowance) };
}

describe('jobDataReadLimit', () => {
  let server: Server | undefined;

  afterEach(async () => {
    // A failed test may leave reads held in the handler: close their connections too.
    if (server) await new Promise((resolve) => {
      server!.close(resolve);
      server!.closeAllConnections();
    });
    server = undefined;
  });

  it('serves two reads of one user at once and refuses a third while both run; other users and later reads go on', async () => {
    const harness = await readServer(1_048_576);
    server = harness.server;
    const first = read(harness.base, 'alice');
    const second = read(harness.base, 'alice');
    const held = [await harness.nextEntered(), await harness.nextEntered()];

    // A third read let through would wait in the handler: release it, so the test fails rather than hangs.
    const thirdRead = read(harness.base, 'alice');
    const thirdEntered = await Promise.race([harness.nextEntered(), thirdRead.then(() => undefined)]);
    thirdEntered?.release(10);
    const third = await thirdRead;
    expect(third.status).toBe(429);
    expect(third.retryAfter).toBe('1');
    expect(third.detail).toMatch(/at most 2 such reads at once/);

    // Another user's read is not counted against alice's two.
    expect((await read(harness.base, 'bob', { send: 10 })).status).toBe(200);

    held[0]!.release(10);
    expect((await first).status).toBe(200);
    // One of alice's reads ended, so the next one is served.
    expect((await read(harness.base, 'alice', { send: 10 })).status).toBe(200);
    held[1]!.release(10);
    expect((await second).status).toBe(200);
    expect(harness.entered).toHaveLength(0);
  });

  it('charges what a read sent: once a user sent the second\'s budget, the next read waits for the next second', async () => {
    const harness = await readServer(4 * 1_024);
    server = harness.server;
    expect((await read(harness.base, 'alice', { send: 5 * 1_024 })).length).toBe(5 * 1_024);

    // The charge is written once the response closed; the refusal follows it.
    let refused = await read(harness.base, 'alice', { send: 0 });
    for (let tries = 0; refused.status === 200 && tries < 20; tries += 1) refused = await read(harness.base, 'alice', { send: 0 });
    expect(refused.status).toBe(429);
    expect(refused.detail).toMatch(/4096 bytes per second/);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);

    expect((await read(harness.base, 'bob', { send: 10 })).status).toBe(200);
  });

  it('gives back what a reserved read did not send', async () => {
    const harness = await readServer(4 * 1_024);
    server = harness.server;
    // A page may be up to the whole budget, so it reserves it; it sends 1 KiB.
    const page = read(harness.base, 'alice', { page: 4 * 1_024 });
    const pageRead = await harness.nextEntered();
    // While the page is reserved, the window is spent.
    expect((await read(harness.base, 'alice', { send: 10 })).status).toBe(429);
    pageRead.release(1_024);
    expect((await page).status).toBe(200);

    // 3 KiB were given back once the page closed, so a read of 2 KiB is served
    // (a window that ended meanwhile serves it too, so the test cannot flake the other way).
    let next = await read(harness.base, 'alice', { send: 2 * 1_024 });
    for (let tries = 0; next.status === 429 && tries < 20; tries += 1) next = await read(harness.base, 'alice', { send: 2 * 1_024 });
    expect(next.status).toBe(200);
    expect(next.length).toBe(2 * 1_024);
  });
  it('lets summaries through, whatever the user read: they carry no inputs or results', async () => {
    const harness = await readServer(4 * 1_024);
    server = harness.server;
    // Two reads held: a third read of job data is refused…
    const held = [read(harness.base, 'alice'), read(harness.base, 'alice')];
    const reads = [await harness.nextEntered(), await harness.nextEntered()];
    expect((await read(harness.base, 'alice', { send: 10 })).status).toBe(429);
    // …but summaries are served, uncounted, and come with no allowance.
    for (let index = 0; index < 5; index += 1) {
      const summaries = await read(harness.base, 'alice', { summaries: true, send: 3 * 1_024 });
      expect(summaries.status).toBe(200);
      expect(summaries.allowance).toBeUndefined();
    }
    reads[0]!.release(10);
    reads[1]!.release(10);
    expect((await Promise.all(held)).map((answer) => answer.status)).toEqual([200, 200]);
    // 15 KiB of summaries were sent, yet a page finds the window open.
    expect((await read(harness.base, 'alice', { page: 1_024, send: 10 })).status).toBe(200);
  });

  it('allows a page what is left of the window when that is less than its bound, instead of refusing it', async () => {
    const harness = await readServer(8 * 1_024);
    server = harness.server;
    // A whole job of 3 KiB first: 5 KiB are left of this second's 8.
    expect((await read(harness.base, 'alice', { send: 3 * 1_024 })).status).toBe(200);
    let page = await read(harness.base, 'alice', { page: 8 * 1_024, send: 10 });
    // The charge lands once the first read closed; until then the page may see all 8 KiB.
    for (let tries = 0; page.allowance === 8 * 1_024 && tries < 20; tries += 1) page = await read(harness.base, 'alice', { page: 8 * 1_024, send: 10 });
    expect(page.status).toBe(200);
    expect(page.allowance).toBeLessThanOrEqual(5 * 1_024);
    expect(page.allowance).toBeGreaterThan(0);
    // A page's bound below what is left is all it gets.
    const other = await read(harness.base, 'bob', { page: 2 * 1_024, send: 10 });
    expect(other.allowance).toBe(2 * 1_024);
  });

  it('refuses a page once the window is spent', async () => {
    const harness = await readServer(4 * 1_024);
    server = harness.server;
    expect((await read(harness.base, 'alice', { send: 5 * 1_024 })).status).toBe(200);
    let page = await read(harness.base, 'alice', { page: 4 * 1_024, send: 10 });
    for (let tries = 0; page.status === 200 && tries < 20; tries += 1) page = await read(harness.base, 'alice', { page: 4 * 1_024, send: 10 });
    expect(page.status).toBe(429);
    expect(Number(page.retryAfter)).toBeGreaterThanOrEqual(1);
  });
});
