import { isApiListeningMessage } from '../contract';
import { LocalRunError } from './errors';

/**
 * The local API's port. Chosen before its first start and again before every restart until
 * the API has said, over its IPC channel, that it holds one: another checkout's run may take
 * the chosen port between the choice and the bind, and an answer on that port (a 200 from
 * /healthz) would then be that run's, not ours. Once held, the port is the run's for good:
 * every address the run prints and hands on uses it.
 */
export class ApiPort {
  private heldPort: number | undefined;
  private readonly heard: Promise<number>;
  private resolveHeard: (port: number) => void = () => undefined;

  constructor(private readonly choose: () => Promise<number>) {
    this.heard = new Promise((resolve) => (this.resolveHeard = resolve));
  }

  /** The port the API's next start listens on. */
  async next(): Promise<number> {
    return this.heldPort ?? this.choose();
  }

  /** What the API process sends over its IPC channel. */
  hear(message: unknown): void {
    if (!isApiListeningMessage(message) || this.heldPort !== undefined) return;
    this.heldPort = message.port;
    this.resolveHeard(message.port);
  }

  /**
   * The port once the API holds it. Undefined when the run stops first; a LocalRunError
   * after `timeoutMs` without word from the API (crashing, restarted, never listening).
   */
  held(stopping: AbortSignal, timeoutMs: number): Promise<number | undefined> {
    if (stopping.aborted) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const onStop = () => settle(() => resolve(undefined));
      const timer = setTimeout(() => settle(() => reject(new LocalRunError(`the API did not start listening within ${timeoutMs / 1_000} s`))), timeoutMs);
      const settle = (done: () => void) => {
        clearTimeout(timer);
        stopping.removeEventListener('abort', onStop);
        done();
      };
      stopping.addEventListener('abort', onStop, { once: true });
      void this.heard.then((port) => settle(() => resolve(port)));
    });
  }
}
