import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import { CONSOLE_ASSETS_PATH, CONSOLE_PAGES } from '../../contract';

/** Vite writes this file into every build; a directory without it holds the console's sources, not a build. */
const BUILD_MANIFEST = path.join('.vite', 'manifest.json');
const ASSET_MAX_AGE = '365d';

/** The console a compiled API serves: the build beside it (dist/services/console), when `npm run build` made one. */
export function builtConsoleDir(): string | undefined {
  const dir = path.resolve(__dirname, '..', '..', 'console');
  return isConsoleBuild(dir) ? dir : undefined;
}

export function isConsoleBuild(dir: string): boolean {
  return existsSync(path.join(dir, BUILD_MANIFEST)) && existsSync(path.join(dir, 'index.html'));
}

/**
 * The web console: its pages answer index.html (never cached, so a new release is picked
 * up on the next load) and its content-hashed assets are cacheable for a year. Only the
 * console's own paths are served, so nothing of the API, /docs or the probes is shadowed.
 */
export function consoleRoutes(dir: string): Router {
  if (!isConsoleBuild(dir)) throw new Error(`${dir} holds no console build (run npm run build)`);
  const page = readFileSync(path.join(dir, 'index.html'));
  const router = Router();
  const sendPage: express.RequestHandler = (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(page);
  };
  for (const [name, pagePath] of Object.entries(CONSOLE_PAGES)) {
    router.get(pagePath, sendPage);
    if (name === 'job') router.get(`${pagePath}/*rest`, sendPage);
  }
  router.use(
    CONSOLE_ASSETS_PATH,
    express.static(path.join(dir, CONSOLE_ASSETS_PATH), { index: false, immutable: true, maxAge: ASSET_MAX_AGE, fallthrough: true, redirect: false }),
  );
  return router;
}
