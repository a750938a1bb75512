import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that may hold credentials. pino censors them before serialisation, so a secret
 * that reaches a log call by accident still never reaches the stream.
 */
const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'secret',
  '*.secret',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'databaseUrl',
  'redisUrl',
];

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where to write; stdout by default. Tests pass a stream to read what was logged. */
  destination?: pino.DestinationStream;
  /**
   * Errors logged with their type, message and code but no stack: a person reading a
   * command's warnings in a terminal needs what failed, not where in our code. The services
   * keep their stacks, which is what their logs are read for.
   */
  errorsWithoutStacks?: boolean;
}

/** An error as errorsWithoutStacks logs it. */
function errorWithoutStack(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  return { type: error.name, message: error.message, ...(code !== undefined && { code }) };
}

/**
 * JSON logs with level, time and service (DESIGN §8). Correlation ids ride on child
 * loggers: the API's request logger (`req.log`) carries the request's id, the worker's job
 * logger its job's id and the submitter's request id. No implicit context: on Node 20 an
 * AsyncLocalStorage in use turns on promise hooks for every promise the process makes
 * (bench/FINDINGS.md).
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      ...(options.errorsWithoutStacks && { serializers: { err: errorWithoutStack } }),
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

/** Strips the password from a connection URL so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
