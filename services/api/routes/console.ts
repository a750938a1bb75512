import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import { API_PREFIX, CONSOLE_ASSETS_PATH, CONSOLE_PAGES, PATHS } from '../../contract';

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

/** Paths a browser never navigates to as a console page: the API, its documents, the probes, the assets. */
const NOT_CONSOLE_PREFIXES = [API_PREFIX, CONSOLE_ASSETS_PATH, ...Object.values(PATHS)];

function isOutsideConsole(requestPath: string): boolean {
  return NOT_CONSOLE_PREFIXES.some((prefix) => requestPath === prefix || requestPath.startsWith(`${prefix}/`));
}

/**
 * The web console: its pages answer index.html (never cached, so a new release is picked
 * up on the next load) and its content-hashed assets are cacheable for a year. Only the
 * console's own paths are served, so nothing of the API, /docs or the probes is shadowed.
 * A browser asking for any other address (a mistyped or stale link) gets the console with
 * a 404, which shows its own "no such page" with the way back; every other client keeps
 * the problem+json 404.
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
  router.use((req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || isOutsideConsole(req.path)) {
      next();
      return;
    }
    // The answer depends on Accept: a cache must not hand a browser's page to an API client.
    res.vary('Accept');
    if (req.accepts(['json', 'html']) !== 'html') {
      next();
      return;
    }
    res.status(404);
    sendPage(req, res, next);
  });
  return router;
}
