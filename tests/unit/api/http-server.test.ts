import { IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import helmet from 'helmet';
import { createExpressServer } from '../../../services/api/http-server';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('createExpressServer', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  function serve(app: express.Express): Server {
    const server = createExpressServer(app);
    servers.push(server);
    return server;
  }

  it('hands Express requests and responses that already carry the app’s prototypes', async () => {
    const app = express();
    app.get('/', (_req, res) => res.json({ ok: true }));
    const server = serve(app);
    const seen: boolean[] = [];
    // Runs before Express does, so it sees the objects as Node built them.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      seen.push(Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response);
      seen.push(req instanceof IncomingMessage, res instanceof ServerResponse);
    });
    const response = await fetch(await listen(server));
    expect(await response.json()).toEqual({ ok: true });
    expect(seen).toEqual([true, true, true, true]);
  });

  it('serves Express, its middleware and its response helpers as a plain server would', async () => {
    const app = express();
    app.use(helmet());
    app.use(express.json());
    app.post('/things', (req, res) => {
      res
        .status(202)
        .location('/things/1')
        .json({ got: req.body as unknown, ip: req.ip, path: req.path });
    });
    const base = await listen(serve(app));
    const response = await fetch(`${base}/things?x=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":[1,2]}' });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toBe('/things/1');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toEqual({ got: { a: [1, 2] }, ip: '127.0.0.1', path: '/things' });

    const missing = await fetch(`${base}/nowhere`);
    expect(missing.status).toBe(404);
  });

  it('serves the app the ordinary way when Node\'s constructors cannot be called as functions (classes)', async () => {
    class ClassRequest extends IncomingMessage {}
    class ClassResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {}
    const app = express();
    app.get('/', (req, res) => res.json({ prototypeInPlace: Object.getPrototypeOf(req) === app.request }));
    const server = createExpressServer(app, {
      IncomingMessage: ClassRequest as unknown as typeof IncomingMessage,
      ServerResponse: ClassResponse as unknown as typeof ServerResponse,
    });
    servers.push(server);
    const seen: boolean[] = [];
    server.prependListener('request', (req: IncomingMessage) => seen.push(Object.getPrototypeOf(req) === app.request));
    const response = await fetch(await listen(server));
    // Served, by a plain server: Express re-parents the request itself.
    expect(await response.json()).toEqual({ prototypeInPlace: true });
    expect(seen).toEqual([false]);
  });
});
