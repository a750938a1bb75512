import { addAbortSignal, type Readable } from 'node:stream';

export interface ChunkReadingContext {
  signal: AbortSignal;
  progress(percent: number): void;
}

/**
 * The chunks of a file body, for processors that stream: the abort signal is checked
 * between chunks and also interrupts a read that is stuck waiting, and progress follows
 * the bytes read when the total is known (reported only when the whole percent changes).
 */
export async function* readChunks(body: Readable, totalBytes: number, context: ChunkReadingContext): AsyncGenerator<Buffer> {
  addAbortSignal(context.signal, body);
  let bytesRead = 0;
  let reported = -1;
  for await (const chunk of body) {
    context.signal.throwIfAborted();
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    bytesRead += buffer.length;
    if (totalBytes > 0) {
      const percent = Math.min(100, Math.floor((bytesRead * 100) / totalBytes));
      if (percent > reported) {
        reported = percent;
        context.progress(percent);
      }
    }
    yield buffer;
  }
}
