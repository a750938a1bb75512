import { EnvError, EnvSchema, SECRET_ENV_KEYS, WorkerEnvSchema, parseEnv, type Env, type WorkerEnv } from '../contract';

/**
 * Reads the environment for a service at boot. On a bad or missing variable it prints
 * which one (never the value) and exits with status 2, before anything else starts.
 */
export function loadEnv(service: 'api', source?: Record<string, string | undefined>): Env;
export function loadEnv(service: 'worker' | 'cli', source?: Record<string, string | undefined>): WorkerEnv;
export function loadEnv(service: 'api' | 'worker' | 'cli', source: Record<string, string | undefined> = process.env): Env | WorkerEnv {
  const schema = service === 'api' ? EnvSchema : WorkerEnvSchema;
  try {
    const env = { ...parseEnv(source, schema), SERVICE_NAME: source.SERVICE_NAME || service };
    // The CLI runs the migrations and rotates keys, so every secret may be its own.
    if (service !== 'cli') for (const secret of unreadSecrets(source, schema.shape)) process.stderr.write(`${service}: ${secret} is set, but the ${service} never reads it: keep it out of this environment, where it only widens what a compromise of the ${service} gives away\n`);
    return env;
  } catch (error) {
    if (error instanceof EnvError) {
      for (const issue of error.issues) {
        process.stderr.write(`${service}: environment variable ${issue.variable} ${issue.message}\n`);
      }
      process.exit(2);
    }
    throw error;
  }
}

/** Credentials given to a process whose schema leaves them out on purpose (the worker never gets the key-encryption secret). */
function unreadSecrets(source: Record<string, string | undefined>, shape: object): string[] {
  return SECRET_ENV_KEYS.filter((key) => source[key] && !(key in shape));
}
