/**
 * An incremental parser of the Server-Sent Events wire format (the HTML standard's
 * "event stream interpretation"). The console cannot use EventSource because it must
 * send an Authorization header, so it reads the stream with fetch and feeds the text
 * here, in whatever pieces the network delivers.
 */

export interface SseMessage {
  /** The `event` field; `message` when the server named none. */
  type: string;
  data: string;
  /** The last event id seen so far on the stream (what Last-Event-ID must carry on a resume). */
  lastEventId: string;
}

export class SseParser {
  private buffer = '';
  private started = false;
  private data: string[] = [];
  private eventType = '';
  private lastEventIdValue = '';
  private retryMs: number | undefined;

  /** The id to resume after: the latest `id` field, dispatched or not. */
  get lastEventId(): string {
    return this.lastEventIdValue;
  }

  /** The reconnection delay the server asked for with `retry`, if any. */
  get retry(): number | undefined {
    return this.retryMs;
  }

  /** Feeds decoded text; returns the messages it completed. */
  push(text: string): SseMessage[] {
    let input = text;
    if (!this.started && input.length > 0) {
      this.started = true;
      if (input.startsWith('\uFEFF')) input = input.slice(1);
    }
    this.buffer += input;
    const messages: SseMessage[] = [];
    for (;;) {
      const end = this.buffer.search(/[\r\n]/);
      if (end < 0) break;
      // A CR at the very end may be the first half of CRLF: wait for the next piece to know.
      if (this.buffer[end] === '\r' && end === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, end);
      const width = this.buffer[end] === '\r' && this.buffer[end + 1] === '\n' ? 2 : 1;
      this.buffer = this.buffer.slice(end + width);
      const message = this.processLine(line);
      if (message) messages.push(message);
    }
    return messages;
  }

  /** The stream ended: a message without its closing blank line is discarded, as the standard says. */
  end(): void {
    this.buffer = '';
    this.data = [];
    this.eventType = '';
  }

  private processLine(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastEventIdValue = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const hadData = this.data.length > 0;
    const message: SseMessage = { type: this.eventType || 'message', data: this.data.join('\n'), lastEventId: this.lastEventIdValue };
    this.data = [];
    this.eventType = '';
    return hadData ? message : undefined;
  }
}
