import { JobAbortedError, untilAborted } from '../../../services/worker/job-abort';

describe('untilAborted', () => {
  it('settles as the work does while the signal stays quiet', async () => {
    const controller = new AbortController();
    await expect(untilAborted(Promise.resolve(42), controller.signal)).resolves.toBe(42);
    await expect(untilAborted(Promise.reject(new Error('boom')), controller.signal)).rejects.toThrow('boom');
  });

  it('rejects with the abort reason when the signal aborts, though the work never settles', async () => {
    const controller = new AbortController();
    const pending = untilAborted(new Promise<never>(() => undefined), controller.signal);
    controller.abort(new JobAbortedError('timeout'));
    await expect(pending).rejects.toMatchObject({ name: 'JobAbortedError', kind: 'timeout', message: 'job aborted: timeout' });
  });

  it('rejects at once for a signal already aborted, and a late rejection of the work is not left unhandled', async () => {
    const controller = new AbortController();
    controller.abort(new JobAbortedError('shutdown'));
    let rejectWork: (error: Error) => void = () => undefined;
    const work = new Promise<never>((_resolve, reject) => (rejectWork = reject));
    await expect(untilAborted(work, controller.signal)).rejects.toMatchObject({ kind: 'shutdown' });
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    try {
      rejectWork(new Error('late'));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });
});
