import type { Server } from 'node:net';
import { withRuntime } from '../../../services/cli/context';
import { runMigrations } from '../../../services/core/db/migrate';
import { SHARED_ENV } from '../../harness/shared';
import { closeScramAskingServer, openConnections, passwordlessUrl, scramAskingServer } from './scram-asking-server';

const SASL_ERROR = 'SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string';

/** The server's count of open connections once it has settled (a close takes a round trip to be seen). */
async function openConnectionsSettled(server: Server): Promise<number> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const open = await openConnections(server);
    if (open === 0 || Date.now() > deadline) return open;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The CLI exits whatever sockets are left (exitOnceWritten), but a program that uses its
 * connection helpers as a library does not: a socket left open after pg failed to
 * authenticate on the client side keeps that program running until the server gives up on
 * it (authentication_timeout, a minute by default), or for good.
 */
describe('the CLI\'s connections after pg fails to authenticate on the client side', () => {
  let server: Server;
  const saved = { ...process.env };

  beforeEach(async () => {
    server = await scramAskingServer();
  });
  afterEach(() => {
    process.env = { ...saved };
    closeScramAskingServer(server);
  });

  it('withRuntime says PostgreSQL is unavailable and leaves no connection open', async () => {
    Object.assign(process.env, { DATABASE_URL: passwordlessUrl(server), REDIS_URL: process.env[SHARED_ENV.redisUrl], LOG_LEVEL: 'silent' });
    const action = jest.fn(async () => 0);
    await expect(withRuntime(action)).rejects.toThrow(`PostgreSQL is unavailable: ${SASL_ERROR}`);
    expect(action).not.toHaveBeenCalled();
    expect(await openConnectionsSettled(server)).toBe(0);
  });

  it('runMigrations (platform migrate) hands the error on and leaves no connection open', async () => {
    await expect(runMigrations(passwordlessUrl(server))).rejects.toThrow(SASL_ERROR);
    expect(await openConnectionsSettled(server)).toBe(0);
  });
});
