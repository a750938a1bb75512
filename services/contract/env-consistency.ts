/**
 * Settings that are each valid but cannot all hold at once. A rule reads the variables it
 * names and applies to every schema that has them all (the api's, the worker's, the
 * CLI's), so the same contradiction is refused by every process that would act on it.
 */
import type { z } from 'zod';

export interface EnvIssue {
  variable: string;
  message: string;
}

export interface EnvRule<Keys extends string = string> {
  /** What the rule reads; it applies to a parsed env holding every one of them. */
  reads: readonly Keys[];
  /** The variable a refusal names, and what is wrong; undefined when the settings agree. */
  check(env: Record<Keys, unknown>): EnvIssue | undefined;
}

function rule<const Keys extends string>(reads: readonly Keys[], check: (env: Record<Keys, unknown>) => EnvIssue | undefined): EnvRule<Keys> {
  return { reads, check };
}

/** Browsers treat these as secure origins even over plain HTTP, so a Secure cookie set there is kept. */
export function isLoopbackOrigin(address: string): boolean {
  const { hostname } = new URL(address);
  return hostname === 'localhost' || hostname.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(hostname) || hostname === '[::1]';
}

/** Variables that only mean something to the S3 object store, with the value each has when unset. */
const S3_ONLY_SETTINGS = ['S3_RESULTS_BUCKET', 'S3_ENDPOINT', 'S3_REGION', 'S3_PREFIX', 'S3_FORCE_PATH_STYLE'] as const;
const UNSET_S3_VALUES = new Set<unknown>([undefined, '', false]);

export const ENV_RULES: readonly EnvRule[] = [
  rule(['ACCESS_TOKEN_TTL_SECONDS', 'REFRESH_TOKEN_TTL_SECONDS'], (env) =>
    Number(env.ACCESS_TOKEN_TTL_SECONDS) > Number(env.REFRESH_TOKEN_TTL_SECONDS)
      ? {
          variable: 'ACCESS_TOKEN_TTL_SECONDS',
          message: `must not exceed REFRESH_TOKEN_TTL_SECONDS (${String(env.REFRESH_TOKEN_TTL_SECONDS)}): an access token would outlive the session that issued it`,
        }
      : undefined,
  ),
  rule(['SUBMIT_BYTES_PER_SECOND', 'JSON_BODY_LIMIT_BYTES'], (env) =>
    Number(env.SUBMIT_BYTES_PER_SECOND) < Number(env.JSON_BODY_LIMIT_BYTES)
      ? {
          variable: 'SUBMIT_BYTES_PER_SECOND',
          message: `must be at least JSON_BODY_LIMIT_BYTES (${String(env.JSON_BODY_LIMIT_BYTES)}): a submit body at the JSON limit would never fit a user's second`,
        }
      : undefined,
  ),
  rule(['COOKIE_SECURE', 'PUBLIC_URL'], (env) =>
    env.COOKIE_SECURE === true && String(env.PUBLIC_URL).startsWith('http:') && !isLoopbackOrigin(String(env.PUBLIC_URL))
      ? {
          variable: 'COOKIE_SECURE',
          message:
            'is true (its default) while PUBLIC_URL is a plain-HTTP address: browsers refuse a Secure cookie from a plain-HTTP site, so every sign-in would be lost. Serve the console over https (and say so in PUBLIC_URL), or set COOKIE_SECURE=false',
        }
      : undefined,
  ),
  ...S3_ONLY_SETTINGS.map((setting) =>
    rule(['S3_BUCKET', setting], (env) =>
      env.S3_BUCKET === undefined && !UNSET_S3_VALUES.has(env[setting])
        ? { variable: setting, message: 'is set but S3_BUCKET is not: files are kept on the filesystem (OBJECT_STORE_DIR), so it would be ignored. Set S3_BUCKET too, or unset it' }
        : undefined,
    ),
  ),
];

/** What a schema's parsed env breaks of ENV_RULES: the rules whose variables the schema has all of. */
export function inconsistencies(schema: z.ZodType, env: Record<string, unknown>): EnvIssue[] {
  const shape = 'shape' in schema ? (schema.shape as Record<string, unknown>) : undefined;
  if (!shape) return [];
  return ENV_RULES.filter((candidate) => candidate.reads.every((key) => key in shape))
    .map((candidate) => candidate.check(env))
    .filter((issue): issue is EnvIssue => issue !== undefined);
}

/**
 * API settings that are allowed but most likely a mistake where they are, said in the log
 * as the API starts: a local run over plain HTTP needs the first, and nothing forbids a
 * production process on one machine.
 */
export function apiCautions(env: { NODE_ENV: string; COOKIE_SECURE: boolean; PUBLIC_URL: string }): string[] {
  const cautions: string[] = [];
  if (!env.COOKIE_SECURE) cautions.push('COOKIE_SECURE=false: the refresh cookie goes over plain HTTP; for a local run only');
  if (env.NODE_ENV === 'production' && isLoopbackOrigin(env.PUBLIC_URL)) {
    cautions.push(`PUBLIC_URL is ${env.PUBLIC_URL}${env.PUBLIC_URL === 'http://localhost:8080' ? ' (its default)' : ''}: links in mails (password resets) point at the reader's own machine; set it to the console's address`);
  }
  return cautions;
}
