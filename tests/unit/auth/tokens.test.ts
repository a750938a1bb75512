import { UnauthorizedError } from '../../../services/core/errors';
import { createAccessTokens } from '../../../services/core/auth/tokens';

const env = { JWT_SECRET: 'unit-test-signing-key-0123456789abcdef', JWT_ISSUER: 'platform-kit', ACCESS_TOKEN_TTL_SECONDS: 60 };

describe('access tokens', () => {
  afterEach(() => jest.useRealTimers());

  it('verifies a token it issued, again from its cache, with the same claims', async () => {
    const tokens = createAccessTokens(env);
    const token = await tokens.issue({ id: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'user' });
    const first = await tokens.verify(token);
    expect(first).toMatchObject({ userId: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'user' });
    expect(await tokens.verify(token)).toEqual(first);
  });

  it('asks the revocation check on every verification, so a cached token that is revoked is refused', async () => {
    const revoked = new Set<string>();
    const tokens = createAccessTokens(env, { isRevoked: (claims) => revoked.has(claims.tokenId) });
    const token = await tokens.issue({ id: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'user' });
    const claims = await tokens.verify(token);
    revoked.add(claims.tokenId);
    await expect(tokens.verify(token)).rejects.toThrow(new UnauthorizedError('the access token was revoked'));
    const fresh = await tokens.issue({ id: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'user' });
    expect((await tokens.verify(fresh)).userId).toBe(claims.userId);
  });

  it('rejects a cached token once it has expired', async () => {
    const tokens = createAccessTokens(env);
    const token = await tokens.issue({ id: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'admin' });
    await tokens.verify(token);
    const later = Date.now() + (env.ACCESS_TOKEN_TTL_SECONDS + 10) * 1000;
    // Only the clock moves; timers and promises run as usual.
    jest.useFakeTimers({ now: later, advanceTimers: true });
    await expect(tokens.verify(token)).rejects.toThrow(new UnauthorizedError('the access token has expired'));
  });

  it('rejects a token that differs from a cached one by a single character', async () => {
    const tokens = createAccessTokens(env);
    const token = await tokens.issue({ id: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'user' });
    await tokens.verify(token);
    // The first signature character carries six whole bits (the last one's low bits are padding,
    // so changing it may decode to the same signature).
    const at = token.lastIndexOf('.') + 1;
    const changed = token[at] === 'A' ? 'B' : 'A';
    await expect(tokens.verify(`${token.slice(0, at)}${changed}${token.slice(at + 1)}`)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('rejects a token signed with another key even when the claims match', async () => {
    const ours = createAccessTokens(env);
    const theirs = createAccessTokens({ ...env, JWT_SECRET: 'another-signing-key-0123456789abcdefgh' });
    const forged = await theirs.issue({ id: '2f1c9a56-6a5e-4a53-9f0e-0d6b1e3b8c11', role: 'admin' });
    await expect(ours.verify(forged)).rejects.toBeInstanceOf(UnauthorizedError);
  });
});
