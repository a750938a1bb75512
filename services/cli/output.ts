/**
 * Characters a terminal acts on rather than shows: C0 and C1 controls (ESC and CSI start
 * escape sequences that move the cursor, clear the screen or retitle the window) and the
 * bidi controls (U+202E shows the rest of a line reversed). Job inputs, results and errors
 * come from users' files and payloads, so what the CLI prints writes them as \u escapes.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const TERMINAL_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** The same, but for JSON.stringify's output, which escapes C0 itself and keeps its own newlines. */
const CONTROLS_JSON_KEEPS = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const escaped = (control: string): string => `\\u${control.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Text as one line a terminal shows as it is: every control character written as a \u escape. */
export function shownAsText(text: string): string {
  return text.replace(TERMINAL_CONTROLS, escaped);
}

/** A value as JSON whose text shows as it is (still the same JSON: the escapes stand for the same characters). */
export function shownAsJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(CONTROLS_JSON_KEEPS, escaped);
}

const MAX_SHOWN_ARGUMENT = 80;

/** An argument quoted in a message about it: a 100 KB value is not worth repeating in full. */
export function shownArgument(value: string): string {
  return value.length <= MAX_SHOWN_ARGUMENT ? shownAsJson(value) : `${shownAsJson(value.slice(0, MAX_SHOWN_ARGUMENT))}… (${value.length} characters)`;
}

/** One value of a table cell or a `jobs show` line. */
export function shownValue(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'object') return shownAsJson(value);
  return shownAsText(String(value));
}

/** Prints rows as an aligned plain-text table (what an operator reads in a terminal). */
export function printTable<Row extends object>(rows: Row[], columns: (keyof Row & string)[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = shownValue;
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) => values.map((value, index) => value.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${line(columns.map((column) => column.toUpperCase()))}\n`);
  for (const row of rows) process.stdout.write(`${line(columns.map((column) => cell(row[column])))}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${shownAsJson(value, 2)}\n`);
}

/** A bad flag or argument: exit status 2, like every Unix tool. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** PostgreSQL or Redis, which the command needs, does not answer: exit status 1, with which one and why. */
export class DependencyUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}
