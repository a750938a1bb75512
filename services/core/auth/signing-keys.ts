import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { Pool } from 'pg';
import { inTransaction } from '../db/transaction';
import type { Logger } from '../logger';

/** The one signing algorithm: asymmetric, so a verifier holding the public key cannot mint tokens. */
export const SIGNING_ALGORITHM = 'EdDSA';
/** How often a Keyring reads the keys again by default, so a rotation reaches every process. */
export const KEY_REFRESH_MS = 60_000;
/** How many of the newest keys verify: the current one and the one it replaced. */
const VERIFYING_KEYS = 2;
const SEAL_VERSION = 'v1';

/** A key as stored: the public JWK in clear, the private JWK sealed. */
export interface StoredSigningKey {
  kid: string;
  publicJwk: JWK;
  sealedPrivate: string;
  createdAt: Date;
}

/** The AES-256-GCM key that seals private keys, derived from KEY_ENCRYPTION_SECRET. */
function sealingKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'platform-kit', 'signing-key-seal', 32));
}

/** Seals a private JWK; the kid is authenticated data, so a sealed key cannot be moved to another kid's row. */
export function sealPrivateKey(secret: string, kid: string, privateJwk: JWK): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(secret), iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(privateJwk), 'utf8'), cipher.final()]);
  return [SEAL_VERSION, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Throws when the secret is not the one the key was sealed with, or the sealed text was changed. */
export function unsealPrivateKey(secret: string, kid: string, sealed: string): JWK {
  const [version, iv, ciphertext, tag] = sealed.split('.');
  if (version !== SEAL_VERSION || !iv || !ciphertext || !tag) throw new Error(`signing key ${kid}: unknown seal format`);
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(secret), Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(kid, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  try {
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')) as JWK;
  } catch {
    throw new Error(`signing key ${kid} cannot be unsealed: KEY_ENCRYPTION_SECRET is not the one it was sealed with`);
  }
}

/** A fresh Ed25519 key pair with its kid, ready to store. */
export async function createSigningKey(secret: string): Promise<Omit<StoredSigningKey, 'createdAt'>> {
  const kid = randomUUID();
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { crv: 'Ed25519', extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { kid, publicJwk: { ...publicJwk, kid, alg: SIGNING_ALGORITHM, use: 'sig' }, sealedPrivate: sealPrivateKey(secret, kid, await exportJWK(privateKey)) };
}

interface KeyRow {
  kid: string;
  public_jwk: JWK;
  sealed_private: string;
  created_at: Date;
}

/** The signing_keys table. */
export class SigningKeyStore {
  constructor(private readonly pool: Pool) {}

  /** The keys that verify, newest (the signer) first. */
  async verifyingKeys(): Promise<StoredSigningKey[]> {
    const { rows } = await this.pool.query<KeyRow>(
      'SELECT kid, public_jwk, sealed_private, created_at FROM signing_keys ORDER BY created_at DESC, kid LIMIT $1',
      [VERIFYING_KEYS],
    );
    return rows.map((row) => ({ kid: row.kid, publicJwk: row.public_jwk, sealedPrivate: row.sealed_private, createdAt: row.created_at }));
  }

  /**
   * Makes a new current key and deletes the keys that no longer verify (their private
   * halves with them); returns the new key's kid and the deleted ones', which the caller
   * revokes so that processes holding them stop at once. One rotation at a time (advisory
   * lock), so two at once cannot push the previous key out of the verifying set together.
   */
  async rotate(secret: string): Promise<{ kid: string; dropped: string[] }> {
    const key = await createSigningKey(secret);
    const dropped = await inTransaction(this.pool, async (client) => {
      await client.query("SELECT pg_advisory_xact_lock(hashtext('platform-kit:signing-keys'))");
      await this.insert(client, key);
      const { rows } = await client.query<{ kid: string }>(
        'DELETE FROM signing_keys WHERE kid NOT IN (SELECT kid FROM signing_keys ORDER BY created_at DESC, kid LIMIT $1) RETURNING kid',
        [VERIFYING_KEYS],
      );
      return rows.map((row) => row.kid);
    });
    return { kid: key.kid, dropped };
  }

  /** Creates the first key when there is none (first start of a stack); safe when several processes start at once. */
  async ensureOne(secret: string): Promise<void> {
    const key = await createSigningKey(secret);
    await inTransaction(this.pool, async (client) => {
      await client.query("SELECT pg_advisory_xact_lock(hashtext('platform-kit:signing-keys'))");
      const { rowCount } = await client.query('SELECT 1 FROM signing_keys LIMIT 1');
      if (!rowCount) await this.insert(client, key);
    });
  }

  private async insert(client: Pick<Pool, 'query'>, key: Omit<StoredSigningKey, 'createdAt'>): Promise<void> {
    await client.query('INSERT INTO signing_keys (kid, algorithm, public_jwk, sealed_private) VALUES ($1, $2, $3, $4)', [
      key.kid,
      SIGNING_ALGORITHM,
      JSON.stringify(key.publicJwk),
      key.sealedPrivate,
    ]);
  }
}

export interface KeyringOptions {
  /** How often the keys are read again, so a rotation that was not announced still reaches every process. Default KEY_REFRESH_MS. */
  refreshMs?: number;
  /** A kid found unknown after a reload is not looked up again for this long. Default 5 s. */
  unknownKidReloadMs?: number;
}

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

/**
 * The signing keys one API process holds: the newest signs, the newest two verify. Keys
 * are imported once per load, so signing and verifying cost no key setup. A rotation by
 * `platform keys rotate` reaches the process at once through the denylist (the keys it
 * rotated out are revoked, and the process reloads), and otherwise at its next periodic
 * refresh, or when a token signed with the new key arrives (an unknown kid reloads, rate-limited).
 */
export class Keyring {
  private signer: { kid: string; key: VerifyKey } | undefined;
  private verifiers = new Map<string, VerifyKey>();
  /** Kids a reload did not find, until when they are not looked up again. */
  private readonly unknown = new Map<string, number>();
  private loading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Pick<SigningKeyStore, 'verifyingKeys' | 'ensureOne'>,
    private readonly secret: string,
    private readonly log: Logger,
    private readonly options: KeyringOptions = {},
  ) {}

  /** Loads the keys (creating the first when the table is empty) and starts the periodic refresh. */
  async start(): Promise<void> {
    await this.store.ensureOne(this.secret);
    await this.reload();
    this.timer = setInterval(() => {
      this.reload().catch((error: unknown) => this.log.warn({ err: error }, 'could not refresh the signing keys; keeping the ones held'));
    }, this.options.refreshMs ?? KEY_REFRESH_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  current(): { kid: string; key: VerifyKey } {
    if (!this.signer) throw new Error('the keyring was not started');
    return this.signer;
  }

  /** Whether tokens signed with this kid still verify (a cached token's key may have rotated out). */
  trusts(kid: string): boolean {
    return this.verifiers.has(kid);
  }

  async verificationKey(kid: string): Promise<VerifyKey | undefined> {
    const known = this.verifiers.get(kid);
    if (known) return known;
    // A flood of made-up kids costs at most one small SELECT in flight at a time (reload is
    // single-flight), and a kid found unknown is not looked up again for a while.
    if ((this.unknown.get(kid) ?? 0) > Date.now()) return undefined;
    await this.reload().catch((error: unknown) => this.log.warn({ err: error }, 'could not reload the signing keys'));
    const found = this.verifiers.get(kid);
    if (!found) {
      if (this.unknown.size >= 10_000) this.unknown.clear();
      this.unknown.set(kid, Date.now() + (this.options.unknownKidReloadMs ?? 5_000));
    }
    return found;
  }

  reload(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    const stored = await this.store.verifyingKeys();
    const newest = stored[0];
    if (!newest) throw new Error('no signing key in the database');
    const verifiers = new Map<string, VerifyKey>();
    for (const key of stored) verifiers.set(key.kid, await importJWK(key.publicJwk, SIGNING_ALGORITHM));
    const signerKey = this.signer?.kid === newest.kid ? this.signer.key : await importJWK(unsealPrivateKey(this.secret, newest.kid, newest.sealedPrivate), SIGNING_ALGORITHM);
    this.verifiers = verifiers;
    if (this.signer?.kid !== newest.kid) this.log.info({ kid: newest.kid }, 'signing with key');
    this.signer = { kid: newest.kid, key: signerKey };
  }
}
