import { EnvError, EnvSchema, WorkerEnvSchema, parseEnv, type Env, type WorkerEnv } from '../contract';

/**
 * Reads the environment for a service at boot. On a bad or missing variable it prints
 * which one (never the value) and exits with status 2, before anything else starts.
 */
export function loadEnv(service: 'api', source?: Record<string, string | undefined>): Env;
export function loadEnv(service: 'worker' | 'cli', source?: Record<string, string | undefined>): WorkerEnv;
export function loadEnv(service: 'api' | 'worker' | 'cli', source: Record<string, string | undefined> = process.env): Env | WorkerEnv {
  const schema = service === 'api' ? EnvSchema : WorkerEnvSchema;
  try {
    return { ...parseEnv(source, schema), SERVICE_NAME: source.SERVICE_NAME || service };
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
