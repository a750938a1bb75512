import type { AddressInfo } from 'node:net';
import express from 'express';
import { createExpressServer } from '../../../services/api/http-server';
import { provideRequestLogger, requestContext } from '../../../services/api/middleware/request-context';
import { createLogger } from '../../../services/core/logger';

describe('request context', () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: 'request-context-test', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const child = jest.spyOn(log, 'child');
  const app = express();
  provideRequestLogger(app, log);
  app.use(requestContext);
  app.get('/quiet', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/talkative', (req, res) => {
    req.log.info('first');
    req.log.warn('second');
    res.json({ ok: true });
  });
  // The API's own server (Express's prototypes in place from construction) and a plain one.
  const servers = [createExpressServer(app), app.listen(0)];
  const base = (index: number) => `http://127.0.0.1:${(servers[index]!.address() as AddressInfo).port}`;

  beforeAll(async () => {
    servers[0]!.listen(0);
    await Promise.all(servers.map((server) => new Promise((resolve) => (server.listening ? resolve(undefined) : server.once('listening', resolve)))));
  });
  afterAll(() => Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve)))));
  beforeEach(() => {
    lines.length = 0;
    child.mockClear();
  });

  it.each([0, 1])('binds each request\'s lines to its id, making its logger only when it logs (server %i)', async (index) => {
    const quiet = await fetch(`${base(index)}/quiet`, { headers: { 'x-request-id': 'quiet-1' } });
    expect(quiet.headers.get('x-request-id')).toBe('quiet-1');
    expect(child).not.toHaveBeenCalled();
    await Promise.all(['a', 'b'].map((id) => fetch(`${base(index)}/talkative`, { headers: { 'x-request-id': `talk-${id}` } })));
    expect(child).toHaveBeenCalledTimes(2);
    expect(lines.map((line) => [line.requestId, line.msg]).sort()).toEqual([
      ['talk-a', 'first'],
      ['talk-a', 'second'],
      ['talk-b', 'first'],
      ['talk-b', 'second'],
    ]);
  });
});
