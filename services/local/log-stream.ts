import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { prettyFactory } from 'pino-pretty';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** Calls `onLine` for every line the stream prints (without its newline). */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    if (line.trim() !== '') onLine(line);
  });
}

const TAG_WIDTH = 8;
const TAG_COLOURS: Record<string, number> = { local: 32, postgres: 34, redis: 31, api: 36, worker: 35 };

/**
 * The one log stream of the local run. Every service's lines come through here tagged
 * with the service: NDJSON (one pino-shaped record per line) when stdout is a pipe or a
 * file, so it stays machine-readable; pino-pretty with a coloured service column on a
 * terminal.
 */
export class MergedLog {
  private readonly prettify: ((record: Record<string, unknown>) => string) | undefined;

  constructor(
    private readonly out: NodeJS.WritableStream,
    pretty: boolean,
  ) {
    this.prettify = pretty
      ? prettyFactory({ colorize: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l', singleLine: false })
      : undefined;
  }

  /** A line a service printed: pino JSON is kept (tagged if it is not already), anything else becomes a record. */
  serviceLine(service: string, line: string, fallbackLevel: LogLevel): void {
    const parsed = parseJsonObject(line);
    if (parsed) {
      parsed.service ??= service;
      this.emit(parsed);
    } else {
      this.record(service, fallbackLevel, line);
    }
  }

  record(service: string, level: LogLevel, msg: string): void {
    this.emit({ level, time: new Date().toISOString(), service, msg });
  }

  /** A pino destination whose records land in this stream under `service`. */
  destinationFor(service: string): { write(chunk: string): void } {
    return { write: (chunk) => chunk.split('\n').forEach((line) => line.trim() && this.serviceLine(service, line, 'info')) };
  }

  private emit(record: Record<string, unknown>): void {
    if (!this.prettify) {
      this.out.write(`${JSON.stringify(record)}\n`);
      return;
    }
    const service = typeof record.service === 'string' ? record.service : '?';
    const colour = TAG_COLOURS[service] ?? 37;
    this.out.write(`\u001b[${colour}m${service.padEnd(TAG_WIDTH)}\u001b[0m│ ${this.prettify(record)}`);
  }
}

function parseJsonObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
