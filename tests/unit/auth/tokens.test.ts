import { createSecretKey } from 'node:crypto';
import { SignJWT, UnsecuredJWT, decodeProtectedHeader } from 'jose';
import { UnauthorizedError } from '../../../services/core/errors';
import { createLogger } from '../../../services/core/logger';
import { createSigningKey, Keyring, sealPrivateKey, unsealPrivateKey, type StoredSigningKey } from '../../../services/core/auth/signing-keys';
import { ACCESS_TOKEN_AUDIENCE, createAccessTokens } from '../../../services/core/auth/tokens';

const env = { JWT_ISSUER: 'platform-kit', ACCESS_TOKEN_TTL_SECONDS: 60 };
const SECRET = 'unit-test-sealing-secret-0123456789abcdef';
const USER = { id: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'user' as const };
const SESSION = '0e0c7f5e-55b4-4c47-9d6c-5c3f0b8f7a21';
const silent = createLogger({ service: 'test', level: 'silent' });

/** The keys a keyring would read from signing_keys, newest first, held in a list for the unit tests. */
async function keyringWith(count = 1) {
  const keys: StoredSigningKey[] = [];
  for (let index = 0; index < count; index += 1) keys.unshift({ ...(await createSigningKey(SECRET)), createdAt: new Date() });
  const store = { verifyingKeys: async () => keys.slice(0, 2), ensureOne: async () => undefined };
  const keyring = new Keyring(store, SECRET, silent, { unknownKidReloadMs: 0 });
  await keyring.reload();
  return { keyring, keys };
}

describe('access tokens', () => {
  it('signs EdDSA with a kid and verifies, again from its cache, with the same claims', async () => {
    const { keyring, keys } = await keyringWith();
    const tokens = createAccessTokens(env, keyring);
    const { token } = await tokens.issue(USER, SESSION);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', kid: keys[0]?.kid, typ: 'JWT' });
    const first = await tokens.verify(token);
    expect(first).toMatchObject({ userId: USER.id, role: 'user', sessionId: SESSION });
    expect(await tokens.verify(token)).toEqual(first);
  });

  it('asks the revocation check on every verification, so a cached token that is revoked is refused', async () => {
    const { keyring } = await keyringWith();
    const revoked = new Set<string>();
    const tokens = createAccessTokens(env, keyring, { isRevoked: (claims) => revoked.has(claims.tokenId) || revoked.has(claims.sessionId) });
    const { token, tokenId } = await tokens.issue(USER, SESSION);
    await tokens.verify(token);
    revoked.add(tokenId);
    await expect(tokens.verify(token)).rejects.toThrow('revoked');
    revoked.clear();
    const other = await tokens.issue(USER, SESSION);
    await tokens.verify(other.token);
    revoked.add(SESSION);
    await expect(tokens.verify(other.token)).rejects.toThrow('revoked');
  });

  it('tells a watcher once when its token is revoked, at once when it already was, and never after it stopped watching', async () => {
    const { keyring } = await keyringWith();
    const revoked = new Set<string>();
    const listeners = new Set<() => void>();
    const changed = () => listeners.forEach((listener) => listener());
    const tokens = createAccessTokens(env, keyring, {
      isRevoked: (claims) => revoked.has(claims.sessionId),
      revocations: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    });
    const claims = await tokens.verify((await tokens.issue(USER, SESSION)).token);
    const calls: string[] = [];
    tokens.watchRevocation(claims, () => calls.push('watched'));
    const stopped = tokens.watchRevocation(claims, () => calls.push('stopped'));
    stopped();
    changed();
    expect(calls).toEqual([]);
    revoked.add(SESSION);
    changed();
    changed();
    tokens.watchRevocation(claims, () => calls.push('late'));
    expect(calls).toEqual(['watched', 'late']);
    expect(listeners.size).toBe(0);
  });

  it('refuses alg none, HS256 keyed with the public key, a missing kid and a changed signature', async () => {
    const { keyring, keys } = await keyringWith();
    const tokens = createAccessTokens(env, keyring);
    const claims = { role: 'admin', sid: SESSION };
    const none = new UnsecuredJWT(claims).setSubject(USER.id).setIssuer(env.JWT_ISSUER).setAudience(ACCESS_TOKEN_AUDIENCE).setIssuedAt().setExpirationTime('1m').setJti('x').encode();
    await expect(tokens.verify(none)).rejects.toBeInstanceOf(UnauthorizedError);
    const publicAsSecret = createSecretKey(Buffer.from(JSON.stringify(keys[0]?.publicJwk)));
    const confused = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: keys[0]?.kid })
      .setSubject(USER.id).setIssuer(env.JWT_ISSUER).setAudience(ACCESS_TOKEN_AUDIENCE).setIssuedAt().setExpirationTime('1m').setJti('y')
      .sign(publicAsSecret);
    await expect(tokens.verify(confused)).rejects.toBeInstanceOf(UnauthorizedError);
    const { token } = await tokens.issue(USER, SESSION);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const flipped = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    await expect(tokens.verify(flipped)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('verifies with the previous key after a rotation, and not with a key rotated out', async () => {
    const { keyring, keys } = await keyringWith();
    const tokens = createAccessTokens(env, keyring);
    const before = await tokens.issue(USER, SESSION);
    keys.unshift({ ...(await createSigningKey(SECRET)), createdAt: new Date() });
    await keyring.reload();
    const after = await tokens.issue(USER, SESSION);
    expect(decodeProtectedHeader(after.token).kid).toBe(keys[0]?.kid);
    await expect(tokens.verify(before.token)).resolves.toMatchObject({ userId: USER.id });
    keys.unshift({ ...(await createSigningKey(SECRET)), createdAt: new Date() });
    await keyring.reload();
    await expect(tokens.verify(before.token)).rejects.toThrow('unknown key');
    await expect(tokens.verify(after.token)).resolves.toMatchObject({ userId: USER.id });
  });

  it('seals private keys so that another secret or another kid cannot unseal them', async () => {
    const key = await createSigningKey(SECRET);
    const sealed = sealPrivateKey(SECRET, key.kid, { kty: 'OKP', crv: 'Ed25519', d: 'secret-part', x: 'public-part' });
    expect(sealed).not.toContain('secret-part');
    expect(unsealPrivateKey(SECRET, key.kid, sealed)).toMatchObject({ d: 'secret-part' });
    expect(() => unsealPrivateKey('another-sealing-secret-0123456789abcdef', key.kid, sealed)).toThrow('cannot be unsealed');
    expect(() => unsealPrivateKey(SECRET, 'another-kid', sealed)).toThrow('cannot be unsealed');
  });
});
