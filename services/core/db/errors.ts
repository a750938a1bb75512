/** How PostgreSQL errors are told apart: a fault of one row, a server that is away, or a bug. */

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * SQLSTATE classes 22 (data exception: a NUL in text, a bad number) and 23 (integrity
 * violation: a missing foreign row, a CHECK): the row is at fault, not the statement, so
 * the rest of its batch can still be written.
 */
export function isRowFault(error: unknown): boolean {
  return /^2[23]/.test(sqlState(error) ?? '');
}

/**
 * PostgreSQL did not answer within the time the caller allows (see answerWithin and
 * commitWithin): it is away or stopped answering, so the caller treats it as unavailable.
 */
export class DatabaseDeadlineError extends Error {
  constructor() {
    super('PostgreSQL did not answer in the time allowed');
    this.name = 'DatabaseDeadlineError';
  }
}

/**
 * Refused without asking PostgreSQL: a request found it away moments ago and it has not
 * answered a probe since (see DatabaseAvailability).
 */
export class DatabaseAwayError extends Error {
  constructor() {
    super('PostgreSQL has not answered since a request found it away');
    this.name = 'DatabaseAwayError';
  }
}

/** Messages node-postgres gives errors of its own, which carry no SQLSTATE. */
const CONNECTION_FAILURE = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|connection timeout/i;
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * The database is away or refusing work for now (down, restarting, unreachable, out of
 * connections): the request may succeed later, so the API answers 503 with Retry-After and
 * a worker keeps its result and tries again.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof DatabaseDeadlineError || error instanceof DatabaseAwayError) return true;
  const code = sqlState(error);
  if (code !== undefined) {
    // 08: connection exception; 57P01-57P03: shutdown, crash, cannot connect now; 53300: too many connections.
    if (/^(08|57P0[1-3]|53300)/.test(code) || SOCKET_ERRORS.has(code)) return true;
  }
  return error instanceof Error && CONNECTION_FAILURE.test(error.message);
}

/**
 * The server gave up on the statement at its `statement_timeout` (57014): it waited on a
 * lock or the server is overloaded. Nothing of it was written, and it may go through later.
 */
export function isStatementTimeout(error: unknown): boolean {
  return sqlState(error) === '57014';
}

/** Worth running again as is: the server was away, or it chose this transaction as a deadlock or serialization victim. */
export function isRetryable(error: unknown): boolean {
  const code = sqlState(error);
  return isDatabaseUnavailable(error) || code === '40001' || code === '40P01';
}

/**
 * Runs `items` through `write`, which returns one result per item in order. When the batch
 * fails because of one row's data (isRowFault), it is split in halves until the faulty rows
 * stand alone, and `onRowFault` decides each one's result: one bad row costs its neighbours
 * a few extra statements (log₂ of the batch), never their write.
 */
export async function isolateRowFaults<T, R>(
  items: T[],
  write: (items: T[]) => Promise<R[]>,
  onRowFault: (item: T, error: unknown) => Promise<R>,
): Promise<R[]> {
  try {
    return await write(items);
  } catch (error) {
    if (!isRowFault(error)) throw error;
    if (items.length === 1) return [await onRowFault(items[0] as T, error)];
    const middle = Math.ceil(items.length / 2);
    // One half after the other: the pool stays free for everything else meanwhile.
    const first = await isolateRowFaults(items.slice(0, middle), write, onRowFault);
    const second = await isolateRowFaults(items.slice(middle), write, onRowFault);
    return [...first, ...second];
  }
}
