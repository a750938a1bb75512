import { randomUUID } from 'node:crypto';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import helmet from 'helmet';
import { createExpressServer } from '../services/api/http-server';

/**
 * The HTTP stack the API is built on, with nothing of ours: Express 5, helmet, the JSON
 * body parser and a 202 with a job-sized JSON body, served the way the API serves it
 * (services/api/http-server.ts). What this costs per request is the floor under the API's
 * own figure. With `--plain`, served by a plain `createServer(app)` instead, to show what
 * that costs; with `--node`, the same 202 from node:http alone (no Express, no helmet),
 * the floor under any Node HTTP service on this machine. Prints its port, stops on SIGTERM.
 */
function acceptedJob(input: unknown): Record<string, unknown> {
  const now = new Date().toISOString();
  return { id: randomUUID(), type: 'echo', status: 'queued', input, attempts: 0, createdAt: now, updatedAt: now };
}

function expressApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(helmet());
  app.use(express.json());
  app.post('/v1/jobs', (req, res) => {
    res
      .status(202)
      .location(`/v1/jobs/${randomUUID()}`)
      .json(acceptedJob(req.body as unknown));
  });
  return app;
}

const nodeOnly: RequestListener = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let input: unknown;
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    const body = JSON.stringify(acceptedJob(input));
    res.writeHead(202, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), location: `/v1/jobs/${randomUUID()}` });
    res.end(body);
  });
};

const mode = process.argv.includes('--node') ? 'node' : process.argv.includes('--plain') ? 'plain' : 'express';
const server = mode === 'node' ? createServer(nodeOnly) : mode === 'plain' ? createServer(expressApp()) : createExpressServer(expressApp());
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
