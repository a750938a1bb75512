import pino from 'pino';
import { Supervisor } from '../../services/local/processes';

describe('Supervisor', () => {
  const silent = pino({ level: 'silent' });

  it('stops in reverse order of registration, every step even after a failure, once', async () => {
    const supervisor = new Supervisor(silent);
    const stopped: string[] = [];
    const step = (name: string, fail = false) => ({
      name,
      stop: async () => {
        stopped.push(name);
        if (fail) throw new Error(`${name} failed`);
      },
      kill: async () => undefined,
    });
    supervisor.onShutdown(step('postgres'));
    supervisor.onShutdown(step('redis', true));
    supervisor.onShutdown(step('api and worker'));

    const first = supervisor.stop('test', 0);
    const second = supervisor.stop('again', 0);
    expect(supervisor.stopping.aborted).toBe(true);
    await Promise.all([first, second, supervisor.stopped()]);
    expect(stopped).toEqual(['api and worker', 'redis', 'postgres']);
    expect(supervisor.exitCode).toBe(0);
  });

  it('refuses to register anything once shutdown has begun', async () => {
    const supervisor = new Supervisor(silent);
    await supervisor.stop('test', 0);
    expect(() => supervisor.onShutdown({ name: 'late', stop: async () => undefined, kill: async () => undefined })).toThrow('test');
  });

  it('exits non-zero when a child exits on its own', async () => {
    const supervisor = new Supervisor(silent);
    supervisor.childExited('worker', { code: 1, signal: null });
    await supervisor.stopped();
    expect(supervisor.exitCode).toBe(1);
  });
});
