import { csvSummary, type JobOutput } from '../../contract';
import { readChunks } from '../file-chunks';
import { defineProcessor, PermanentJobError } from '../processor';

export type CsvSummary = JobOutput<typeof csvSummary>;
type ColumnSummary = CsvSummary['columns'][number];

/** Characters of a field kept for naming and number parsing; a longer field is text (and never a number). */
const MAX_KEPT_FIELD_LENGTH = 1_024;
/** A wider record is not a table this job can summarise; it also bounds the memory one record takes. */
const MAX_COLUMNS = 10_000;

const QUOTE = 0x22;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** Decimal notation only: Number() would also take `0x1F`, `Infinity` and the empty string. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

type ParserState = 'fieldStart' | 'unquoted' | 'quoted' | 'quoteInQuoted';

interface Field {
  value: string;
  truncated: boolean;
}

class ColumnStats {
  count = 0;
  empty: number;
  private allNumeric = true;
  private min = Infinity;
  private max = -Infinity;
  private mean = 0;

  /** `rowsBefore`: rows seen before this column first appeared; they had no cell for it. */
  constructor(
    readonly name: string,
    rowsBefore: number,
  ) {
    this.empty = rowsBefore;
  }

  add(field: Field | undefined): void {
    const value = field?.value.trim() ?? '';
    if (value === '' && !field?.truncated) {
      this.empty += 1;
      return;
    }
    this.count += 1;
    if (!this.allNumeric) return;
    const number = !field?.truncated && DECIMAL.test(value) ? Number(value) : NaN;
    if (!Number.isFinite(number)) {
      this.allNumeric = false;
      return;
    }
    this.min = Math.min(this.min, number);
    this.max = Math.max(this.max, number);
    // A running mean does not overflow or lose small values the way a grand total can.
    this.mean += (number - this.mean) / this.count;
  }

  summary(): ColumnSummary {
    const summary: ColumnSummary = { name: this.name, count: this.count, empty: this.empty };
    if (this.allNumeric && this.count > 0) summary.numeric = { min: this.min, max: this.max, mean: this.mean };
    return summary;
  }
}

/**
 * A streaming CSV summariser (RFC 4180): quoted fields may hold delimiters, line breaks
 * and doubled quotes; records end with CRLF, LF or CR; state carries across chunks.
 * Lenient where real files are sloppy (a quote inside an unquoted field is literal; blank
 * lines are skipped), strict where the structure is lost: an unterminated quoted field or
 * text after a closing quote is a PermanentJobError.
 *
 * Per column: `count` non-blank cells, `empty` blank or missing cells (so count + empty =
 * rows), and `numeric` when every non-blank cell is a decimal number. Without a header
 * the columns are named column1, column2, …; so are columns beyond the header's.
 */
export class CsvSummariser {
  private readonly decoder = new TextDecoder('utf-8');
  private readonly delimiter: number;
  private state: ParserState = 'fieldStart';
  private skipLineFeed = false;
  private field = '';
  private fieldTruncated = false;
  private record: Field[] = [];
  private recordHasContent = false;
  private recordNumber = 1;
  private headerNames: string[] | undefined;
  private readonly columns: ColumnStats[] = [];
  private rows = 0;

  constructor(options: { delimiter: string; header: boolean }) {
    const code = options.delimiter.charCodeAt(0);
    if (options.delimiter.length !== 1 || code === QUOTE || code === LINE_FEED || code === CARRIAGE_RETURN) {
      throw new PermanentJobError(`delimiter ${JSON.stringify(options.delimiter)} cannot separate CSV fields`);
    }
    this.delimiter = code;
    if (!options.header) this.headerNames = [];
  }

  push(chunk: Buffer): void {
    this.parse(this.decoder.decode(chunk, { stream: true }));
  }

  finish(): CsvSummary {
    this.parse(this.decoder.decode());
    if (this.state === 'quoted') {
      throw new PermanentJobError(`record ${this.recordNumber}: quoted field is not terminated before the end of the file`);
    }
    if (this.state !== 'fieldStart' || this.record.length > 0) {
      this.endField();
      this.endRecord();
    }
    if (this.headerNames && this.columns.length < this.headerNames.length) this.ensureColumns(this.headerNames.length);
    return { rows: this.rows, columns: this.columns.map((column) => column.summary()) };
  }

  private parse(text: string): void {
    const length = text.length;
    let at = 0;
    while (at < length) {
      switch (this.state) {
        case 'fieldStart': {
          const code = text.charCodeAt(at);
          if (this.skipLineFeed) {
            this.skipLineFeed = false;
            if (code === LINE_FEED) {
              at += 1;
              continue;
            }
          }
          if (code === QUOTE) {
            this.state = 'quoted';
            this.recordHasContent = true;
            at += 1;
          } else {
            this.state = 'unquoted';
          }
          break;
        }
        case 'unquoted': {
          let end = at;
          let code = -1;
          for (; end < length; end += 1) {
            code = text.charCodeAt(end);
            if (code === this.delimiter || code === LINE_FEED || code === CARRIAGE_RETURN) break;
          }
          if (end > at) {
            this.append(text.slice(at, end));
            this.recordHasContent = true;
          }
          if (end === length) return;
          at = end + 1;
          if (code === this.delimiter) {
            this.recordHasContent = true;
            this.endField();
          } else {
            this.endField();
            this.endRecord();
            this.skipLineFeed = code === CARRIAGE_RETURN;
          }
          break;
        }
        case 'quoted': {
          const quote = text.indexOf('"', at);
          if (quote === -1) {
            this.append(text.slice(at));
            return;
          }
          this.append(text.slice(at, quote));
          this.state = 'quoteInQuoted';
          at = quote + 1;
          break;
        }
        case 'quoteInQuoted': {
          const code = text.charCodeAt(at);
          at += 1;
          if (code === QUOTE) {
            this.append('"');
            this.state = 'quoted';
          } else if (code === this.delimiter) {
            this.endField();
          } else if (code === LINE_FEED || code === CARRIAGE_RETURN) {
            this.endField();
            this.endRecord();
            this.skipLineFeed = code === CARRIAGE_RETURN;
          } else {
            throw new PermanentJobError(`record ${this.recordNumber}: unexpected ${JSON.stringify(String.fromCharCode(code))} after a closing quote`);
          }
          break;
        }
      }
    }
  }

  private append(text: string): void {
    if (this.fieldTruncated) return;
    if (this.field.length + text.length > MAX_KEPT_FIELD_LENGTH) {
      this.field += text.slice(0, MAX_KEPT_FIELD_LENGTH - this.field.length);
      this.fieldTruncated = true;
    } else {
      this.field += text;
    }
  }

  private endField(): void {
    if (this.record.length === MAX_COLUMNS) {
      throw new PermanentJobError(`record ${this.recordNumber}: more than ${MAX_COLUMNS} fields`);
    }
    this.record.push({ value: this.field, truncated: this.fieldTruncated });
    this.field = '';
    this.fieldTruncated = false;
    this.state = 'fieldStart';
  }

  private endRecord(): void {
    const record = this.record;
    const blankLine = !this.recordHasContent;
    this.record = [];
    this.recordHasContent = false;
    this.state = 'fieldStart';
    if (blankLine) return;
    this.recordNumber += 1;
    if (!this.headerNames) {
      this.headerNames = record.map((field) => field.value);
      return;
    }
    this.ensureColumns(record.length);
    this.columns.forEach((column, index) => column.add(record[index]));
    this.rows += 1;
  }

  private ensureColumns(count: number): void {
    for (let index = this.columns.length; index < count; index += 1) {
      const headerName = this.headerNames?.[index];
      this.columns.push(new ColumnStats(headerName ? headerName : `column${index + 1}`, this.rows));
    }
  }
}

export default defineProcessor(csvSummary, async ({ input, files, signal, progress }) => {
  const summariser = new CsvSummariser({ delimiter: input.delimiter, header: input.header });
  const { file, body } = await files.open(input.fileId);
  for await (const chunk of readChunks(body, file.size, { signal, progress })) summariser.push(chunk);
  return { result: summariser.finish() };
});
