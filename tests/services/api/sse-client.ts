import type { ApiFixture } from './fixture';

export interface StreamedEvent {
  id: number;
  data: { jobId: string; parentId: string | null; from: string | null; to: string };
}

/** An SSE client over fetch: collects events as they arrive, notes `retry:` hints, and knows when the server ended the stream. */
export class SseClient {
  readonly events: StreamedEvent[] = [];
  readonly retryHints: number[] = [];
  status = 0;
  ended = false;
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];

  static async open(api: ApiFixture, path: string, token: string, lastEventId?: number, extraHeaders: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    const headers: Record<string, string> = { ...extraHeaders, authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
    // As EventSource does, a connection that fails before any answer is tried again (a pooled
    // keep-alive socket the server closed as it was reused fails so).
    const connect = () => fetch(`${api.baseUrl}${path}`, { headers, signal: client.abort.signal });
    const response = await connect().catch(connect);
    client.status = response.status;
    if (response.status !== 200 || !response.body) {
      client.ended = true;
      await response.body?.cancel();
      return client;
    }
    void client.read(response.body);
    return client;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let boundary: number;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          this.parse(buffer.slice(0, boundary));
          buffer = buffer.slice(boundary + 2);
        }
        this.notify();
      }
    } catch {
      // Aborted by close().
    }
    this.ended = true;
    this.notify();
  }

  private parse(block: string): void {
    let id: number | undefined;
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) id = Number(line.slice(4));
      else if (line.startsWith('data: ')) data = line.slice(6);
      else if (line.startsWith('retry: ')) this.retryHints.push(Number(line.slice(7)));
    }
    if (id !== undefined && data !== undefined) this.events.push({ id, data: JSON.parse(data) as StreamedEvent['data'] });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves once `check` holds; fails after a generous bound so a broken stream fails the test instead of hanging it. */
  async until(what: string, check: (client: SseClient) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.events.map((event) => event.data.to))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
  }

  close(): void {
    this.abort.abort();
  }
}
