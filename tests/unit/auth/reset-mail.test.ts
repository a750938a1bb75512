import type { SessionRepository } from '../../../services/core/db/sessions';
import type { UserRecord, UserRepository } from '../../../services/core/db/users';
import { createAuthService, type AuthEnv, type Mail } from '../../../services/core/auth/service';
import type { AccessTokens } from '../../../services/core/auth/tokens';
import { ConflictError } from '../../../services/core/errors';
import { createLogger } from '../../../services/core/logger';

const ADA: UserRecord = { id: '0190b7a2-7c4e-7a51-9a0e-3f1d2c4b5a69', email: 'ada@example.com', passwordHash: 'unused', role: 'user', createdAt: new Date(), disabledAt: null };

/** An auth service for Ada's account, with only what the mails' paths touch behind it; the mails it sends land in `mails`. */
function authService(publicUrl: string, mails: Mail[]) {
  const env: AuthEnv = { PUBLIC_URL: publicUrl, PASSWORD_RESET_TTL_SECONDS: 1800, REFRESH_TOKEN_TTL_SECONDS: 3600 };
  return createAuthService({
    env,
    users: {
      findByEmail: async (email: string) => (email === ADA.email ? ADA : undefined),
      insert: async () => {
        throw new ConflictError('taken');
      },
    } as unknown as UserRepository,
    sessions: { createResetToken: async () => undefined } as unknown as SessionRepository,
    tokens: {} as AccessTokens,
    revoke: async () => undefined,
    sendMail: async (mail) => {
      mails.push(mail);
    },
    security: () => undefined,
    log: createLogger({ service: 'test', level: 'silent' }),
  });
}

/** The reset mail the service composes for Ada's account. */
async function resetMail(publicUrl: string): Promise<Mail> {
  const mails: Mail[] = [];
  await authService(publicUrl, mails).requestPasswordReset(ADA.email);
  expect(mails).toHaveLength(1);
  return mails[0] as Mail;
}

describe('the password-reset mail (services/core/auth/service.ts)', () => {
  it('links the console\'s reset page with the token in the fragment, never in the path or the query', async () => {
    const mail = await resetMail('https://console.example.com');
    const token = /Reset token \(single use, valid for 30 minutes\): ([A-Za-z0-9_-]{43})$/m.exec(mail.text)?.[1] ?? '';
    expect(token).toHaveLength(43);
    const link = /^Set a new password at (\S+)$/m.exec(mail.text)?.[1] ?? '';
    expect(link).toBe(`https://console.example.com/reset#token=${token}`);
    const url = new URL(link);
    expect({ path: url.pathname, query: url.search }).toEqual({ path: '/reset', query: '' });
    expect(new URLSearchParams(url.hash.slice(1)).get('token')).toBe(token);
    expect(mail.text).toContain(`curl -X POST https://console.example.com/v1/auth/password-reset/confirm -H 'content-type: application/json' -d '{"token":"${token}","password":"<new password>"}'`);
  });

  it('makes the same links from a PUBLIC_URL that ends in a slash', async () => {
    const mail = await resetMail('https://console.example.com/');
    expect(mail.text).toMatch(/^Set a new password at https:\/\/console\.example\.com\/reset#token=[A-Za-z0-9_-]{43}$/m);
    expect(mail.text).toContain('curl -X POST https://console.example.com/v1/auth/password-reset/confirm ');
  });
});

describe('the mail to an address that registers again (services/core/auth/service.ts)', () => {
  it('links the console\'s sign-in and forgotten-password pages', async () => {
    const mails: Mail[] = [];
    await authService('https://console.example.com/', mails).register({ email: ADA.email, password: 'correct horse battery staple' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(mails).toHaveLength(1);
    expect(mails[0]?.text).toContain(
      'If it was you: sign in instead (https://console.example.com/sign-in), or reset your password (https://console.example.com/forgot-password).',
    );
  });
});
