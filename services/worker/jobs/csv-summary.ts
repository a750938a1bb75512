import { pipeline, Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { CsvError, parse } from 'csv-parse';
import { csvSummary, type JobOutput } from '../../contract';
import { readChunks } from '../file-chunks';
import { defineProcessor, PermanentJobError } from '../processor';

export type CsvSummary = JobOutput<typeof csvSummary>;
type ColumnSummary = CsvSummary['columns'][number];

/** A wider record is not a table this job can summarise; it also bounds the memory one record takes. */
const MAX_COLUMNS = 10_000;
/** Characters one record may hold; a bigger one is not a table row (and would otherwise be held whole in memory). */
const MAX_RECORD_CHARACTERS = 1_048_576;
/**
 * Bytes the parser takes in one go. It builds an error object (a stack and a copy of its
 * context) for every record whose width differs from the first record's, even when told to
 * accept it: about 30 µs a record, so one 64 KiB read of short ragged rows costs most of a
 * second. Fed this much at a time, the parser keeps the worker's event loop, which every
 * job of the worker shares, for a few tens of milliseconds at most.
 */
const PARSE_SLICE_BYTES = 4_096;
/** Decimal notation only: Number() would also take `0x1F`, `Infinity` and the empty string. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * One column's cells. Only cells a record holds are added: a record shorter than the widest
 * costs its own width, not the table's, so a 10,000-name header over millions of one-cell
 * rows is read as fast as the rows alone. Cells a record lacks are counted at the end,
 * as the rows that gave the column nothing.
 */
class ColumnStats {
  private count = 0;
  private allNumeric = true;
  private min = Infinity;
  private max = -Infinity;
  private mean = 0;

  constructor(readonly name: string) {}

  add(cell: string): void {
    const value = cell.trim();
    if (value === '') return;
    this.count += 1;
    if (!this.allNumeric) return;
    const number = DECIMAL.test(value) ? Number(value) : NaN;
    if (!Number.isFinite(number)) {
      this.allNumeric = false;
      return;
    }
    this.min = Math.min(this.min, number);
    this.max = Math.max(this.max, number);
    // A running mean does not overflow or lose small values the way a grand total can.
    this.mean += (number - this.mean) / this.count;
  }

  /** `rows`: the rows of the whole table; each one that gave this column no non-blank cell counts as empty. */
  summary(rows: number): ColumnSummary {
    const summary: ColumnSummary = { name: this.name, count: this.count, empty: rows - this.count };
    if (this.allNumeric && this.count > 0) summary.numeric = { min: this.min, max: this.max, mean: this.mean };
    return summary;
  }
}

function assertUsableDelimiter(delimiter: string): void {
  if (delimiter === '"' || delimiter === '\r' || delimiter === '\n') {
    throw new PermanentJobError(`delimiter ${JSON.stringify(delimiter)} cannot separate CSV fields`);
  }
}

/** The bytes in slices of PARSE_SLICE_BYTES, the event loop free to run other jobs' work before each. */
async function* inSlices(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += PARSE_SLICE_BYTES) {
      await nextTurn();
      yield chunk.subarray(at, at + PARSE_SLICE_BYTES);
    }
  }
}

/** What a parse error tells the job's owner; every one is permanent, the file will not change. */
function describeCsvError(error: CsvError): string {
  const line = (error as CsvError & { lines?: number }).lines;
  const where = line === undefined ? '' : ` (line ${line})`;
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return `a quoted field is not terminated before the end of the file${where}`;
    case 'CSV_INVALID_CLOSING_QUOTE':
      return `unexpected text after a closing quote${where}`;
    case 'CSV_MAX_RECORD_SIZE':
      return `a record is longer than ${MAX_RECORD_CHARACTERS} characters${where}`;
    default:
      return `${error.message}${where}`;
  }
}

/**
 * Summarises CSV (parsed by csv-parse: RFC 4180 quoting, CRLF, LF or CR line ends, a leading
 * byte order mark dropped, blank lines skipped, rows of any width). Per column: `count` non-blank cells, `empty` blank
 * or missing cells (so count + empty = rows), and `numeric` when every non-blank cell is a
 * decimal number. Without a header the columns are named column1, column2, …; so are
 * columns beyond the header's. A file that is not CSV fails with a PermanentJobError.
 */
export async function summariseCsv(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, options: { delimiter: string; header: boolean }): Promise<CsvSummary> {
  assertUsableDelimiter(options.delimiter);
  // pipeline, not pipe(): a failure of the source (a read error, the job stopped mid-read)
  // reaches the parser, which the loop below reads. pipe() leaves it on the source, where
  // nobody listens, and an 'error' nobody hears ends the worker with every job it runs.
  // The loop reports the failure; the callback has nothing to add.
  const parser = pipeline(
    Readable.from(inSlices(chunks)),
    parse({
      delimiter: options.delimiter,
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      skip_empty_lines: true,
      max_record_size: MAX_RECORD_CHARACTERS,
      encoding: 'utf8',
      // Spreadsheet programs start their UTF-8 CSV with a byte order mark; kept, it would hide in the first column's name.
      bom: true,
    }),
    () => undefined,
  );
  let headerNames: string[] | undefined = options.header ? undefined : [];
  const columns: ColumnStats[] = [];
  let rows = 0;
  const ensureColumns = (count: number) => {
    for (let index = columns.length; index < count; index += 1) {
      const headerName = headerNames?.[index];
      columns.push(new ColumnStats(headerName ? headerName : `column${index + 1}`));
    }
  };
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (record.length > MAX_COLUMNS) throw new PermanentJobError(`record ${rows + (options.header ? 2 : 1)}: more than ${MAX_COLUMNS} fields`);
      if (!headerNames) {
        headerNames = record;
        continue;
      }
      ensureColumns(record.length);
      record.forEach((cell, index) => columns[index]?.add(cell));
      rows += 1;
    }
  } catch (error) {
    if (error instanceof CsvError) throw new PermanentJobError(describeCsvError(error));
    throw error;
  }
  if (headerNames) ensureColumns(headerNames.length);
  return { rows, columns: columns.map((column) => column.summary(rows)) };
}

export default defineProcessor(csvSummary, async ({ input, files, signal, progress }) => {
  assertUsableDelimiter(input.delimiter);
  const { file, body } = await files.open(input.fileId);
  return { result: await summariseCsv(readChunks(body, file.size, { signal, progress }), { delimiter: input.delimiter, header: input.header }) };
});
