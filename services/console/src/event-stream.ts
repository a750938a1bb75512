import { apiFetch, ApiProblem, asProblem } from './api';
import { SseParser, type SseMessage } from './sse';

/** Until the server states its own `retry`. */
const DEFAULT_RETRY_MS = 2_000;
const MAX_RETRY_MS = 30_000;

export interface EventStreamHandlers {
  onMessage(message: SseMessage): void;
  /** The stream is (again) connected. */
  onOpen?(): void;
  /**
   * The stream failed. `final` is true when it will not be retried: the API answered
   * with a client error (no such stream, not allowed), which reconnecting cannot change.
   */
  onError?(problem: ApiProblem, final: boolean): void;
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/**
 * Follows a Server-Sent Events endpoint with the bearer token (which EventSource cannot
 * send): fetch streams the body into the SSE parser, and when the stream ends or breaks
 * it reconnects after the server's `retry` delay with Last-Event-ID, so no event is lost
 * or repeated. Runs until `signal` aborts.
 */
export async function followEventStream(path: string, handlers: EventStreamHandlers, signal: AbortSignal): Promise<void> {
  let lastEventId = '';
  let retryMs = DEFAULT_RETRY_MS;
  let failures = 0;
  while (!signal.aborted) {
    const parser = new SseParser();
    try {
      const response = await apiFetch(path, {
        headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
        signal,
      });
      if (!response.body) throw new ApiProblem(0, 'The event stream has no body');
      failures = 0;
      handlers.onOpen?.();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const message of parser.push(value)) {
          lastEventId = message.lastEventId;
          handlers.onMessage(message);
        }
        retryMs = parser.retry ?? retryMs;
      }
      parser.end();
      if (parser.lastEventId) lastEventId = parser.lastEventId;
    } catch (error) {
      if (signal.aborted) return;
      const problem = asProblem(error);
      const final = problem.status >= 400 && problem.status < 500 && problem.status !== 408 && problem.status !== 429;
      handlers.onError?.(problem, final);
      if (final) return;
      failures += 1;
    }
    await wait(Math.min(MAX_RETRY_MS, retryMs * 2 ** Math.min(failures, 4)), signal);
  }
}
