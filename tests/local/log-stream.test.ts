import { PassThrough } from 'node:stream';
import { MergedLog } from '../../services/local/log-stream';
import { postgresLineLevel } from '../../services/local/postgres';
import { parseRedisLine } from '../../services/local/redis';

function collect(pretty: boolean): { log: MergedLog; lines: () => string[] } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  return { log: new MergedLog(out, pretty), lines: () => chunks.join('').split('\n').filter(Boolean) };
}

describe('MergedLog', () => {
  it('keeps pino JSON lines and tags them with the service that printed them', () => {
    const { log, lines } = collect(false);
    log.serviceLine('api', '{"level":"info","time":"2026-01-01T00:00:00.000Z","msg":"listening","port":8080}', 'info');
    log.serviceLine('api', '{"level":"info","service":"api-cluster-1","msg":"own tag"}', 'info');
    expect(lines().map((line) => JSON.parse(line))).toEqual([
      { level: 'info', time: '2026-01-01T00:00:00.000Z', msg: 'listening', port: 8080, service: 'api' },
      { level: 'info', service: 'api-cluster-1', msg: 'own tag' },
    ]);
  });

  it('turns plain text lines into records, so the whole stream stays NDJSON', () => {
    const { log, lines } = collect(false);
    log.serviceLine('postgres', '[42] LOG:  database system is ready to accept connections', 'info');
    log.serviceLine('worker', 'Error: boom', 'warn');
    const records = lines().map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records).toEqual([
      { level: 'info', time: expect.any(String), service: 'postgres', msg: '[42] LOG:  database system is ready to accept connections' },
      { level: 'warn', time: expect.any(String), service: 'worker', msg: 'Error: boom' },
    ]);
  });

  it('on a terminal, prefixes each pretty-printed record with its service', () => {
    const { log, lines } = collect(true);
    log.record('redis', 'info', 'Ready to accept connections');
    const [first] = lines();
    // eslint-disable-next-line no-control-regex
    const plain = first!.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain).toMatch(/^redis +│ \[\d\d:\d\d:\d\d\.\d{3}\] INFO: Ready to accept connections$/);
  });
});

describe('server log parsing', () => {
  it('maps PostgreSQL severities to log levels', () => {
    expect(postgresLineLevel('[1] LOG:  checkpoint starting')).toBe('info');
    expect(postgresLineLevel('[1] WARNING:  out of shared memory')).toBe('warn');
    expect(postgresLineLevel('[1] ERROR:  relation "x" does not exist')).toBe('error');
    expect(postgresLineLevel('[1] FATAL:  password authentication failed')).toBe('error');
    expect(postgresLineLevel('[1] PANIC:  could not write to file')).toBe('fatal');
  });

  it('strips the Redis prefix and keeps its routine banner at info', () => {
    expect(parseRedisLine('7:M 22 Nov 2026 02:44:33.880 * Ready to accept connections')).toEqual({ level: 'info', msg: 'Ready to accept connections' });
    expect(parseRedisLine('7:M 22 Nov 2026 02:44:33.880 # Server initialized')).toEqual({ level: 'info', msg: 'Server initialized' });
    expect(parseRedisLine('7:M 22 Nov 2026 02:44:33.880 # WARNING Memory overcommit must be enabled!')).toEqual({
      level: 'warn',
      msg: 'WARNING Memory overcommit must be enabled!',
    });
    expect(parseRedisLine('7:signal-handler (1795315479) Received SIGTERM scheduling shutdown...')).toEqual({
      level: 'info',
      msg: 'Received SIGTERM scheduling shutdown...',
    });
  });
});
