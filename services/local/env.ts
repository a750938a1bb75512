import { EnvSchema } from '../contract';

/**
 * The variables the supervisor itself reads, validated with the contract's own rules.
 * DATABASE_URL, REDIS_URL and S3_BUCKET are optional here: unset, the local run provides
 * that part itself.
 */
const LocalEnvSchema = EnvSchema.pick({
  DATABASE_URL: true,
  DATABASE_SSL: true,
  REDIS_URL: true,
  S3_BUCKET: true,
  KEY_ENCRYPTION_SECRET: true,
  SHUTDOWN_GRACE_MS: true,
  LOG_LEVEL: true,
})
  .partial({ DATABASE_URL: true, REDIS_URL: true, KEY_ENCRYPTION_SECRET: true })
  // Unset means "the contract's port, or a free one when that is taken" (start.ts): no
  // default here, so the run can tell a port the user chose from one it may move.
  .extend({ PORT: EnvSchema.shape.PORT.unwrap().optional(), WORKER_METRICS_PORT: EnvSchema.shape.WORKER_METRICS_PORT.unwrap().optional() });

export type LocalEnv = ReturnType<typeof LocalEnvSchema.parse>;

export class LocalEnvError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = this.constructor.name;
  }
}

/** Parses the supervisor's variables; the error names each bad variable, never its value. */
export function parseLocalEnv(source: Record<string, string | undefined>): LocalEnv {
  const blanksRemoved = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== ''));
  const result = LocalEnvSchema.safeParse(blanksRemoved);
  if (result.success) return result.data;
  const problems = new Map<string, string>();
  for (const issue of result.error.issues) {
    const variable = String(issue.path[0] ?? '(env)');
    if (!problems.has(variable)) problems.set(variable, `environment variable ${variable} ${issue.message}`);
  }
  throw new LocalEnvError([...problems.values()]);
}
