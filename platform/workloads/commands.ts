/**
 * The container commands: the image's entry points, the same compiled files `npm start`
 * runs for the api and the worker (services/local/start.ts) and `platform migrate` for the
 * schema, all under /app in the image (see the Dockerfile).
 */
const NODE = ['node', '--enable-source-maps'] as const;

export const IMAGE_ROOT = '/app';

export const CONTAINER_COMMANDS = {
  api: [...NODE, `${IMAGE_ROOT}/dist/services/api/main.js`],
  worker: [...NODE, `${IMAGE_ROOT}/dist/services/worker/main.js`],
  migrations: [...NODE, `${IMAGE_ROOT}/dist/services/cli/index.js`, 'migrate'],
} as const satisfies Record<string, readonly string[]>;
