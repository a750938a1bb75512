import { EnvError, parseEnv, type Env } from '../contract';

/**
 * Reads the environment for a service at boot. On a bad or missing variable it prints
 * which one (never the value) and exits with status 2, before anything else starts.
 */
export function loadEnv(service: string, source: Record<string, string | undefined> = process.env): Env {
  try {
    return { ...parseEnv(source), SERVICE_NAME: source.SERVICE_NAME || service };
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
