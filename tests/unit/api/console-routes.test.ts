import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { consoleRoutes, isConsoleBuild } from '../../../services/api/routes/console';
import { notFoundHandler, createProblemHandler } from '../../../services/api/problem';

const SOURCES = path.resolve(__dirname, '..', '..', '..', 'services', 'console');
const PAGE = '<!doctype html><title>console</title>';
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('the console the API serves (services/api/routes/console.ts)', () => {
  it('tells a Vite build from the console\'s sources, which also hold an index.html', () => {
    expect(isConsoleBuild(SOURCES)).toBe(false);
    expect(() => consoleRoutes(SOURCES)).toThrow(`${SOURCES} holds no console build (run npm run build)`);
    expect(isConsoleBuild(path.join(SOURCES, 'missing'))).toBe(false);
  });

  describe('an address that is no page of the console', () => {
    let build: string;
    let server: Server;
    let origin: string;

    beforeAll(async () => {
      build = mkdtempSync(path.join(os.tmpdir(), 'console-build-'));
      mkdirSync(path.join(build, '.vite'));
      writeFileSync(path.join(build, '.vite', 'manifest.json'), '{}');
      writeFileSync(path.join(build, 'index.html'), PAGE);
      const app = express();
      app.use(consoleRoutes(build));
      app.use(notFoundHandler);
      app.use(createProblemHandler({}));
      server = createServer(app);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(build, { recursive: true, force: true });
    });

    it('gives a browser the console with a 404, so it shows its own "no such page" with the way back', async () => {
      for (const address of ['/jbos', '/jobs-list/x', '/sign-in/extra', '/v1x']) {
        const response = await fetch(`${origin}${address}`, { headers: { accept: BROWSER_ACCEPT } });
        expect({ address, status: response.status, type: response.headers.get('content-type') }).toEqual({ address, status: 404, type: 'text/html; charset=utf-8' });
        expect(await response.text()).toBe(PAGE);
        expect(response.headers.get('vary')).toMatch(/Accept/);
        expect(response.headers.get('cache-control')).toBe('no-cache');
      }
    });

    it('keeps problem+json for every other client, and for the API, the probes, the documents and the assets even in a browser', async () => {
      for (const accept of ['*/*', 'application/json']) {
        const response = await fetch(`${origin}/jbos`, { headers: { accept } });
        expect(response.status).toBe(404);
        expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
        expect(response.headers.get('vary')).toMatch(/Accept/);
      }
      for (const address of ['/v1', '/v1/jobz', '/healthz/x', '/metrics', '/openapi.json', '/docs/x', '/assets/missing.js']) {
        const response = await fetch(`${origin}${address}`, { headers: { accept: BROWSER_ACCEPT } });
        expect({ address, status: response.status, type: response.headers.get('content-type') }).toEqual({ address, status: 404, type: expect.stringMatching(/application\/problem\+json/) });
      }
      const posted = await fetch(`${origin}/jbos`, { method: 'POST', headers: { accept: BROWSER_ACCEPT } });
      expect(posted.headers.get('content-type')).toMatch(/application\/problem\+json/);
    });
  });
});
