import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import helmet from 'helmet';
import { createExpressServer } from '../services/api/http-server';

/**
 * The HTTP stack the API is built on, with nothing of ours: Express 5, helmet, the JSON
 * body parser and a 202 with a job-sized JSON body, served the way the API serves it
 * (services/api/http-server.ts). What this costs per request is the floor under the API's
 * own figure. With `--plain`, served by a plain `createServer(app)` instead, to show what
 * that costs. Prints its port, stops on SIGTERM.
 */
const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(helmet());
app.use(express.json());
app.post('/v1/jobs', (req, res) => {
  const now = new Date().toISOString();
  res
    .status(202)
    .location(`/v1/jobs/${randomUUID()}`)
    .json({ id: randomUUID(), type: 'echo', status: 'queued', input: req.body as unknown, attempts: 0, createdAt: now, updatedAt: now });
});
const server = process.argv.includes('--plain') ? createServer(app) : createExpressServer(app);
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
