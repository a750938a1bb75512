/**
 * How much memory a file job's run holds as its file grows, against what its type declares
 * (`fileMemory` in services/contract/jobs.ts, what the worker reserves from
 * WORKER_FILE_MEMORY_BUDGET_BYTES). Each file shape runs in a child process of its own: the
 * real processor reads a generated file through a context like the worker's, and memory is
 * sampled between chunks after two full collections, so what is counted is what the run
 * keeps alive, not garbage waiting for a collection. The V8 heap (heapUsed + external) for
 * text.stats and csv.summary; resident memory for brotli, whose state lives outside it,
 * over several runs at once to even out the allocator.
 *
 *   node --expose-gc -r @swc-node/register bench/file-job-memory.ts [--sizes 0.25,1,4,8,16,25]
 *
 * A row whose peak is above what the type declares is marked UNDER: raise the bounds.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { csvSummary, fileCompress, fileMemoryBytes, textStats, type FileView, type JobTypeDefinition } from '../services/contract';
import { createLogger } from '../services/core/logger';
import csvSummaryProcessor from '../services/worker/jobs/csv-summary';
import fileCompressProcessor from '../services/worker/jobs/file-compress';
import textStatsProcessor from '../services/worker/jobs/text-stats';
import type { Processor, ProcessorContext } from '../services/worker/processor';

const MiB = 1_048_576;
/** What the object store hands a processor at a time (a filesystem read stream's default). */
const CHUNK_BYTES = 64 * 1024;
const SAMPLE_EVERY_BYTES = 256 * 1024;
/** Brotli runs measured at once, resident memory divided among them. */
const BROTLI_RUNS = 8;

interface Shape {
  name: string;
  definition: JobTypeDefinition;
  processor: Processor;
  input: Record<string, unknown>;
  /** Pieces of text of a few KiB at most, so the generator itself holds next to nothing. */
  pieces(): Generator<string | Buffer>;
  /** Some shapes only reach their peak past the upload limit (a full table of long words). */
  sizesMiB?: number[];
  memory: 'heap' | 'resident';
}

/** The n-th word of `length` letters of an alphabet of `size` letters from `first`: every one distinct. */
function nthWord(n: number, length: number, first: number, size: number): string {
  let word = '';
  for (let rest = n; word.length < length; rest = Math.floor(rest / size)) word = String.fromCharCode(first + (rest % size)) + word;
  return word;
}

function* distinctWords(length: number, first: number, size: number): Generator<string> {
  for (let n = 0; ; n += 1) yield `${nthWord(n, length, first, size)} `;
}

function* csvRows(columns: number, header: (index: number) => string, cell: (row: number, column: number) => Generator<string>): Generator<string> {
  for (let column = 0; column < columns; column += 1) yield header(column) + (column === columns - 1 ? '\n' : ',');
  for (let row = 0; ; row += 1) {
    for (let column = 0; column < columns; column += 1) {
      yield* cell(row, column);
      yield column === columns - 1 ? '\n' : ',';
    }
  }
}

function* repeated(character: string, count: number): Generator<string> {
  for (let left = count; left > 0; left -= 1024) yield character.repeat(Math.min(1024, left));
}

/** Half random bytes, half text: brotli's window and tables fill. */
function* mixedBytes(): Generator<Buffer> {
  const text = Buffer.from('lorem ipsum dolor sit amet, consectetur adipiscing elit '.repeat(600));
  for (;;) {
    yield randomBytes(32 * 1024);
    yield text.subarray(0, 32 * 1024);
  }
}

const LATIN = [0x61, 26] as const;
const CYRILLIC = [0x430, 32] as const;
const CJK = [0x4e00, 20_000] as const;
const fileId = '00000000-0000-4000-8000-000000000000';
const text = (name: string, length: number, [first, size]: readonly [number, number], sizesMiB?: number[]): Shape => ({
  name: `text.stats: distinct ${name} words of ${length}`,
  definition: textStats,
  processor: textStatsProcessor as unknown as Processor,
  input: { fileId },
  pieces: () => distinctWords(length, first, size),
  memory: 'heap',
  ...(sizesMiB ? { sizesMiB } : {}),
});
const csv = (name: string, columns: number, header: (index: number) => string, cell: (row: number, column: number) => Generator<string>, sizesMiB?: number[]): Shape => ({
  name: `csv.summary: ${name}`,
  definition: csvSummary,
  processor: csvSummaryProcessor as unknown as Processor,
  input: { fileId, delimiter: ',', header: true },
  pieces: () => csvRows(columns, header, cell),
  memory: 'heap',
  ...(sizesMiB ? { sizesMiB } : {}),
});

const SHAPES: Shape[] = [
  text('Latin', 4, LATIN),
  text('Latin', 32, LATIN),
  text('Latin', 128, LATIN),
  text('Latin', 256, LATIN, [25, 50, 60]),
  text('Cyrillic', 256, CYRILLIC, [25, 50, 100, 110]),
  text('CJK', 2, CJK),
  csv('10,000 columns', 10_000, (index) => `c${index}`.padEnd(90, 'x'), function* (row, column) {
    yield String((row * 31 + column) % 1000);
  }),
  csv('records of a million digits', 20, (index) => `c${index}`, () => repeated('1', 50_000)),
  csv('records of a million Cyrillic letters', 20, (index) => `c${index}`, () => repeated('ж', 49_000), [25, 40, 60, 80]),
  {
    name: 'file.compress: brotli, half random',
    definition: fileCompress,
    processor: fileCompressProcessor as unknown as Processor,
    input: { fileId, format: 'brotli' },
    pieces: mixedBytes,
    memory: 'resident',
  },
];

/** The file's chunks, `totalBytes` of them cut at CHUNK_BYTES, sampling memory as they are pulled. */
async function* generatedFile(shape: Shape, totalBytes: number, sample: (bytesRead: number) => void): AsyncGenerator<Buffer> {
  const pieces = shape.pieces();
  let pending = Buffer.alloc(0);
  let produced = 0;
  while (produced < totalBytes) {
    const parts: Buffer[] = [pending];
    let length = pending.length;
    while (length < CHUNK_BYTES) {
      const piece = pieces.next().value as string | Buffer;
      const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
      parts.push(bytes);
      length += bytes.length;
    }
    const joined = Buffer.concat(parts);
    const take = Math.min(CHUNK_BYTES, totalBytes - produced);
    pending = Buffer.from(joined.subarray(take));
    produced += take;
    yield Buffer.from(joined.subarray(0, take));
    sample(produced);
  }
}

function context(shape: Shape, totalBytes: number, sample: (bytesRead: number) => void): ProcessorContext<JobTypeDefinition> {
  const file: FileView = { id: fileId, name: 'generated', size: totalBytes, contentType: 'application/octet-stream', sha256: '', createdAt: new Date().toISOString() };
  return {
    jobId: fileId,
    ownerId: fileId,
    attempt: 1,
    input: shape.input,
    files: {
      open: async () => ({ file, body: Readable.from(generatedFile(shape, totalBytes, sample)) }),
      saveOutput: async (_name, _contentType, body) => {
        let size = 0;
        for await (const chunk of body) size += (chunk as Buffer).length;
        return { ...file, size };
      },
    },
    mailDrop: { from: '', write: async () => undefined },
    tasks: async function* () {},
    signal: new AbortController().signal,
    progress: () => undefined,
    log: createLogger({ service: 'bench', level: 'silent' }),
  };
}

declare const gc: (() => void) | undefined;

/** In the child: runs one shape up to its largest size and prints the peak reached by each size. */
async function measureShape(shape: Shape, sizesMiB: number[]): Promise<void> {
  if (typeof gc !== 'function') throw new Error('run with node --expose-gc');
  const collect = gc;
  const sizes = sizesMiB.map((size) => Math.round(size * MiB));
  const runs = shape.memory === 'resident' ? BROTLI_RUNS : 1;
  const reading = () => {
    collect();
    collect();
    const usage = process.memoryUsage();
    return shape.memory === 'resident' ? usage.rss : usage.heapUsed + usage.external;
  };
  const base = reading();
  let peak = 0;
  const sample = (bytesRead: number) => {
    if (bytesRead % SAMPLE_EVERY_BYTES !== 0 && !sizes.includes(bytesRead)) return;
    peak = Math.max(peak, (reading() - base) / runs);
    if (sizes.includes(bytesRead)) process.send?.({ fileBytes: bytesRead, peakBytes: peak });
  };
  const total = Math.max(...sizes);
  // Only the first run samples: the others keep pace, pulled by the same event loop.
  await Promise.all(Array.from({ length: runs }, (_, index) => shape.processor.run(context(shape, total, index === 0 ? sample : () => undefined))));
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '0.25,1,4,8,16,25' }, shape: { type: 'string' } } });
  const sizesMiB = values.sizes.split(',').map(Number);
  if (values.shape !== undefined) {
    const shape = SHAPES[Number(values.shape)];
    if (!shape) throw new Error(`no shape ${values.shape}`);
    await measureShape(shape, shape.sizesMiB ?? sizesMiB);
    return;
  }
  process.stdout.write(`| shape | file MiB | peak MiB | declared MiB |\n| --- | --- | --- | --- |\n`);
  for (const [index, shape] of SHAPES.entries()) {
    const child = fork(__filename, ['--shape', String(index), '--sizes', values.sizes], { execArgv: [...process.execArgv, '--expose-gc'] });
    child.on('message', (message: { fileBytes: number; peakBytes: number }) => {
      const declared = shape.definition.fileMemory?.(shape.input);
      const reserved = declared ? fileMemoryBytes(declared, message.fileBytes) : 0;
      const verdict = message.peakBytes > reserved ? ' UNDER' : '';
      process.stdout.write(`| ${shape.name} | ${(message.fileBytes / MiB).toFixed(2)} | ${mib(message.peakBytes)} | ${mib(reserved)}${verdict} |\n`);
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`${shape.name}: the measuring process exited with ${code}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
