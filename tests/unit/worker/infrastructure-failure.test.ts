/**
 * The classifier over what the libraries really throw: each error below comes from pg,
 * ioredis, the AWS SDK (through the platform's S3ObjectStore) or nodemailer, talking to a
 * port nobody listens on, a server that never answers, one that resets the connection, or
 * a small server that answers as PostgreSQL, Redis, S3 or an SMTP relay does when it is
 * restarting, overloaded or failing over. PostgreSQL's own, from a real server whose
 * backends are terminated, are in tests/services/engine/infrastructure-failures.test.ts.
 */
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { DatabaseError, Pool } from 'pg';
import { Redis } from 'ioredis';
import { NotFoundError } from '../../../services/core/errors';
import { DatabaseAwayError, DatabaseDeadlineError } from '../../../services/core/db/errors';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { S3ObjectStore } from '../../../services/core/storage/s3';
import { createSmtpMailDrop } from '../../../services/worker/mail-drop';
import { infrastructureFailure } from '../../../services/worker/infrastructure-failure';
import { JobAbortedError } from '../../../services/worker/job-abort';
import { PermanentJobError } from '../../../services/worker/processor';

interface TcpServer {
  port: number;
  close(): Promise<void>;
}

const execFileAsync = promisify(execFile);
const open = new Set<TcpServer>();

async function tcpServer(onConnection: (socket: Socket) => void): Promise<TcpServer> {
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const handle: TcpServer = {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        open.delete(handle);
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  open.add(handle);
  return handle;
}

/** A port that was free a moment ago: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = await tcpServer(() => undefined);
  await server.close();
  return server.port;
}

/** Accepts connections and never says a word. */
const silentServer = () => tcpServer(() => undefined);

async function rejectionOf(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

afterEach(async () => {
  await Promise.all([...open].map((server) => server.close()));
});

describe('infrastructureFailure: PostgreSQL (pg)', () => {
  /** A PostgreSQL wire message: type, length (itself included), body. */
  function message(type: string, body: Buffer): Buffer {
    const header = Buffer.alloc(5);
    header.write(type, 0, 'latin1');
    header.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([header, body]);
  }

  function errorResponse(fields: { severity: string; code: string; message: string }): Buffer {
    const field = (code: string, value: string) => Buffer.concat([Buffer.from(code, 'latin1'), Buffer.from(value), Buffer.from([0])]);
    return message('E', Buffer.concat([field('S', fields.severity), field('V', fields.severity), field('C', fields.code), field('M', fields.message), Buffer.from([0])]));
  }

  const authenticationOk = () => message('R', Buffer.from([0, 0, 0, 0]));
  const readyForQuery = () => message('Z', Buffer.from('I'));

  /**
   * Speaks just enough of PostgreSQL's protocol: refuses the startup with `startupError`, or
   * accepts it and answers the first query with `queryError`, closing the connection after
   * a FATAL one, as a backend does.
   */
  function fakePostgres(behaviour: { startupError?: Parameters<typeof errorResponse>[0]; queryError?: Parameters<typeof errorResponse>[0] }) {
    return tcpServer((socket) => {
      let started = false;
      socket.on('data', (chunk: Buffer) => {
        if (!started) {
          started = true;
          if (behaviour.startupError) socket.end(errorResponse(behaviour.startupError));
          else socket.write(Buffer.concat([authenticationOk(), readyForQuery()]));
          return;
        }
        if (chunk[0] === 'Q'.charCodeAt(0) && behaviour.queryError) {
          const response = errorResponse(behaviour.queryError);
          if (behaviour.queryError.severity === 'FATAL') socket.end(response);
          else socket.write(Buffer.concat([response, readyForQuery()]));
        }
      });
    });
  }

  const pools: Pool[] = [];
  function pool(port: number, options: { max?: number; connectionTimeoutMillis?: number } = {}): Pool {
    const created = new Pool({ host: '127.0.0.1', port, user: 'platform', database: 'platform', connectionTimeoutMillis: 500, ...options });
    // A pooled client whose server went away reports it here as well as to its query.
    created.on('error', () => undefined);
    pools.push(created);
    return created;
  }
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((created) => created.end().catch(() => undefined)));
  });

  it('the server restarting: its backend terminated mid-query (57P01), then a client that is no longer queryable', async () => {
    const server = await fakePostgres({ queryError: { severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' } });
    const client = await pool(server.port).connect();
    client.on('error', () => undefined);
    const terminated = await rejectionOf(client.query('SELECT 1'));
    expect(terminated).toBeInstanceOf(DatabaseError);
    expect(terminated).toMatchObject({ code: '57P01' });
    expect(infrastructureFailure(terminated)).toBe('PostgreSQL');
    const after = await rejectionOf(client.query('SELECT 1'));
    expect(String((after as Error).message)).toMatch(/not queryable|Connection terminated/);
    expect(infrastructureFailure(after)).toBe('PostgreSQL');
    client.release(true);
  });

  it('the server starting up (57P03), and out of connection slots (53300)', async () => {
    for (const refusal of [
      { severity: 'FATAL', code: '57P03', message: 'the database system is starting up' },
      { severity: 'FATAL', code: '53300', message: 'sorry, too many clients already' },
    ]) {
      const server = await fakePostgres({ startupError: refusal });
      const error = await rejectionOf(pool(server.port).query('SELECT 1'));
      expect(error).toMatchObject({ code: refusal.code });
      expect(infrastructureFailure(error)).toBe('PostgreSQL');
    }
  });

  it('a connection exception (08006) and a deadlock victim (40P01)', async () => {
    for (const code of ['08006', '40P01']) {
      const server = await fakePostgres({ queryError: { severity: 'ERROR', code, message: 'refused for now' } });
      const error = await rejectionOf(pool(server.port).query('SELECT 1'));
      expect(error).toMatchObject({ code });
      expect(infrastructureFailure(error)).toBe('PostgreSQL');
    }
  });

  it('a server that never answers: the connection times out, and the pool times out handing one out', async () => {
    const server = await silentServer();
    const busy = pool(server.port, { max: 1, connectionTimeoutMillis: 300 });
    const [connecting, waiting] = await Promise.all([rejectionOf(busy.query('SELECT 1')), rejectionOf(busy.query('SELECT 1'))]);
    expect((connecting as Error).message).toBe('Connection terminated due to connection timeout');
    expect((waiting as Error).message).toBe('timeout exceeded when trying to connect');
    expect(infrastructureFailure(connecting)).toBe('PostgreSQL');
    expect(infrastructureFailure(waiting)).toBe('PostgreSQL');
  });

  it('a refused connection is a failed connection to a platform service (a bare socket error names its address, not its service)', async () => {
    const error = await rejectionOf(pool(await closedPort()).query('SELECT 1'));
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(infrastructureFailure(error)).toBe('a connection to a platform service');
  });

  it('a deadline the platform put on a statement, or a server found away moments ago', () => {
    expect(infrastructureFailure(new DatabaseDeadlineError())).toBe('PostgreSQL');
    expect(infrastructureFailure(new DatabaseAwayError())).toBe('PostgreSQL');
  });

  it('a statement timeout (57014): a lock or a stalled server, since a processor\'s statements are the platform\'s bounded lookups', async () => {
    const server = await fakePostgres({ queryError: { severity: 'ERROR', code: '57014', message: 'canceling statement due to statement timeout' } });
    const error = await rejectionOf(pool(server.port).query('SELECT 1'));
    expect(error).toBeInstanceOf(DatabaseError);
    expect(infrastructureFailure(error)).toBe('PostgreSQL');
  });

  it('not what the job\'s own statement provoked: bad input, a violated constraint, a missing table', async () => {
    for (const code of ['22P02', '23505', '42P01']) {
      const server = await fakePostgres({ queryError: { severity: 'ERROR', code, message: 'the statement failed' } });
      const error = await rejectionOf(pool(server.port).query('SELECT 1'));
      expect(error).toBeInstanceOf(DatabaseError);
      expect(infrastructureFailure(error)).toBeUndefined();
    }
  });
});

describe('infrastructureFailure: Redis (ioredis)', () => {
  const connections: Redis[] = [];
  afterEach(() => {
    for (const connection of connections.splice(0)) connection.disconnect();
  });

  /** Answers GET with `reply` and anything else (the client's SETINFO at connect) with +OK, as RESP. */
  function fakeRedis(reply: string) {
    return tcpServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        const lines = chunk.toString('latin1').split('\r\n');
        for (let index = 0; index < lines.length; index += 1) {
          const line = lines[index] as string;
          if (!line.startsWith('*')) continue;
          const count = Number(line.slice(1));
          const name = (lines[index + 2] ?? '').toUpperCase();
          index += count * 2;
          socket.write(name === 'GET' ? `${reply}\r\n` : '+OK\r\n');
        }
      });
    });
  }

  function redis(port: number, options: { enableOfflineQueue?: boolean } = {}): Redis {
    const connection = new Redis({ host: '127.0.0.1', port, enableReadyCheck: false, connectTimeout: 300, commandTimeout: 300, maxRetriesPerRequest: 1, retryStrategy: () => 50, ...options });
    connection.on('error', () => undefined);
    connections.push(connection);
    return connection;
  }

  it('unreachable: the platform\'s client connection gives up after its retries (MaxRetriesPerRequestError)', async () => {
    const connection = createRedisConnection(`redis://127.0.0.1:${await closedPort()}`, 'client');
    connections.push(connection);
    const error = await rejectionOf(connection.get('key'));
    expect((error as Error).name).toBe('MaxRetriesPerRequestError');
    expect(infrastructureFailure(error)).toBe('Redis');
  });

  it('a server that never answers: the command times out', async () => {
    const server = await silentServer();
    const error = await rejectionOf(redis(server.port).get('key'));
    expect((error as Error).message).toBe('Command timed out');
    expect(infrastructureFailure(error)).toBe('Redis');
  });

  it('a connection that is closed, or not writable with the offline queue off', async () => {
    const closed = redis(await closedPort());
    closed.disconnect();
    const afterClose = await rejectionOf(closed.get('key'));
    expect((afterClose as Error).message).toBe('Connection is closed.');
    expect(infrastructureFailure(afterClose)).toBe('Redis');

    const server = await silentServer();
    const offline = redis(server.port, { enableOfflineQueue: false });
    const unwritable = await rejectionOf(offline.get('key'));
    expect((unwritable as Error).message).toMatch(/enableOfflineQueue/);
    expect(infrastructureFailure(unwritable)).toBe('Redis');
  });

  it('a server refusing work for now: loading its data, a replica after a failover, out of memory', async () => {
    for (const reply of ['-LOADING Redis is loading the dataset in memory', "-READONLY You can't write against a read only replica.", "-OOM command not allowed when used memory > 'maxmemory'."]) {
      const server = await fakeRedis(reply);
      const error = await rejectionOf(redis(server.port).get('key'));
      expect((error as Error).name).toBe('ReplyError');
      expect(infrastructureFailure(error)).toBe('Redis');
    }
  });

  it('not a reply about the command itself', async () => {
    const server = await fakeRedis('-WRONGTYPE Operation against a key holding the wrong kind of value');
    const error = await rejectionOf(redis(server.port).get('key'));
    expect((error as Error).name).toBe('ReplyError');
    expect(infrastructureFailure(error)).toBeUndefined();
  });
});

describe('infrastructureFailure: the object store (@aws-sdk/client-s3, through S3ObjectStore)', () => {
  const stores: S3ObjectStore[] = [];
  afterEach(() => {
    for (const store of stores.splice(0)) store.client.destroy();
  });

  function store(port: number): S3ObjectStore {
    const created = new S3ObjectStore({
      bucket: 'platform-bucket',
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
      connectionTimeoutMs: 300,
      requestTimeoutMs: 300,
    });
    stores.push(created);
    return created;
  }

  /** Answers every request with `status` and an S3 error document naming `code`. */
  async function answering(status: number, code: string): Promise<TcpServer> {
    const server = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
      request.resume();
      request.on('end', () => {
        const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message><RequestId>fake</RequestId></Error>`;
        response.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) }).end(xml);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const handle: TcpServer = {
      port: (server.address() as AddressInfo).port,
      close: () =>
        new Promise<void>((resolve) => {
          open.delete(handle);
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
    open.add(handle);
    return handle;
  }

  it('5xx and throttling, after the SDK\'s own retries: ServiceUnavailable, SlowDown, InternalError, 429', async () => {
    for (const [status, code] of [
      [503, 'ServiceUnavailable'],
      [503, 'SlowDown'],
      [500, 'InternalError'],
      [429, 'TooManyRequests'],
    ] as const) {
      const server = await answering(status, code);
      const error = await rejectionOf(store(server.port).get('files/owner/file'));
      expect(error).toMatchObject({ name: code, $metadata: { httpStatusCode: status } });
      expect(infrastructureFailure(error)).toBe('the object store');
    }
  });

  it('an upload the store answers 503 to', async () => {
    const server = await answering(503, 'ServiceUnavailable');
    const error = await rejectionOf(store(server.port).put('outputs/job/result', Readable.from([Buffer.from('result')])));
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 503 } });
    expect(infrastructureFailure(error)).toBe('the object store');
  });

  it('a store that resets the connection, never answers, or cannot be reached (in a plain Node process, see object-store-socket-errors.ts)', async () => {
    const { stdout } = await execFileAsync(process.execPath, ['-r', '@swc-node/register', path.join(__dirname, 'object-store-socket-errors.ts')], {
      cwd: path.resolve(__dirname, '../../..'),
      env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1' },
      timeout: 30_000,
    });
    const shapes = stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(shapes).toEqual([
      expect.objectContaining({ case: 'reset', code: 'ECONNRESET', metadata: true, classified: 'the object store' }),
      expect.objectContaining({ case: 'silent', name: 'TimeoutError', metadata: true, classified: 'the object store' }),
      expect.objectContaining({ case: 'refused', code: 'ECONNREFUSED', metadata: true, classified: 'the object store' }),
    ]);
  });

  it('not a refusal that retrying cannot change: access denied, a missing bucket', async () => {
    for (const [status, code] of [
      [403, 'AccessDenied'],
      [404, 'NoSuchBucket'],
    ] as const) {
      const server = await answering(status, code);
      const error = await rejectionOf(store(server.port).get('files/owner/file'));
      expect(error).toMatchObject({ name: code });
      expect(infrastructureFailure(error)).toBeUndefined();
    }
  });

  it('a wrapped failure is classified by its cause', async () => {
    const server = await answering(500, 'InternalError');
    const cause = await rejectionOf(store(server.port).get('files/owner/file'));
    expect(infrastructureFailure(new Error('could not read the input file', { cause }))).toBe('the object store');
  });
});

describe('infrastructureFailure: the mail relay (nodemailer)', () => {
  it('a relay that cannot be reached, and one answering 421 (service not available)', async () => {
    const refused = await rejectionOf(createSmtpMailDrop(`smtp://127.0.0.1:${await closedPort()}`, 'no-reply@example.test').write('m', Buffer.from('Subject: x\r\n\r\nx'), { to: 'a@example.test' }));
    expect(refused).toMatchObject({ code: 'ESOCKET' });
    expect(infrastructureFailure(refused)).toBe('the mail relay');

    const busy = await tcpServer((socket) => socket.end('421 relay.example.test Service not available, closing transmission channel\r\n'));
    const unavailable = await rejectionOf(createSmtpMailDrop(`smtp://127.0.0.1:${busy.port}`, 'no-reply@example.test').write('m', Buffer.from('Subject: x\r\n\r\nx'), { to: 'a@example.test' }));
    expect(unavailable).toMatchObject({ responseCode: 421 });
    expect(infrastructureFailure(unavailable)).toBe('the mail relay');
  });
});

describe('infrastructureFailure: what is the job\'s own', () => {
  it('a processor\'s error, a permanent one, a missing file, an abort, and what is not an error', () => {
    const aborted = new AbortController();
    aborted.abort();
    for (const error of [
      new Error('boom'),
      new TypeError('Cannot read properties of undefined'),
      new PermanentJobError('not a CSV file'),
      new NotFoundError('file 1234 not found'),
      new JobAbortedError('timeout'),
      aborted.signal.reason,
      'a string',
      undefined,
      null,
    ]) {
      expect(infrastructureFailure(error)).toBeUndefined();
    }
  });
});
