import { randomUUID } from 'node:crypto';
import type { UserRepository } from '../db/users';
import { UnauthorizedError } from '../errors';
import type { AccessClaims, AccessTokens } from './tokens';
import type { AccessTokenResponse, LoginBody, RegisterBody, RegisteredUser, UserView } from './credentials';
import { createDummyHash, hashPassword, verifyPassword } from './passwords';

/** Registration, login and the caller's identity. */
export interface AuthService {
  /** Throws ConflictError when the email is taken. */
  register(credentials: RegisterBody): Promise<RegisteredUser>;
  /** Throws UnauthorizedError with one message for an unknown email and a wrong password alike. */
  login(credentials: LoginBody): Promise<AccessTokenResponse>;
  /** Throws UnauthorizedError when the account no longer exists. */
  me(userId: string): Promise<UserView>;
  verifyAccessToken(token: string): Promise<AccessClaims>;
}

const INVALID_CREDENTIALS = 'invalid email or password';

export function createAuthService(users: UserRepository, tokens: AccessTokens): AuthService {
  const dummyHash = createDummyHash();
  // Warm it now so the first login for an unknown email is not slower than the rest.
  dummyHash().catch(() => undefined);
  return {
    async register({ email, password }) {
      const passwordHash = await hashPassword(password);
      const user = await users.insert({ id: randomUUID(), email, passwordHash });
      return { id: user.id, email: user.email };
    },
    async login({ email, password }) {
      const user = await users.findByEmail(email);
      if (!user) {
        await verifyPassword(await dummyHash(), password);
        throw new UnauthorizedError(INVALID_CREDENTIALS);
      }
      if (!(await verifyPassword(user.passwordHash, password))) throw new UnauthorizedError(INVALID_CREDENTIALS);
      const accessToken = await tokens.issue(user);
      return { accessToken, tokenType: 'Bearer', expiresIn: tokens.ttlSeconds };
    },
    async me(userId) {
      const user = await users.findById(userId);
      if (!user) throw new UnauthorizedError('the account no longer exists');
      return { id: user.id, email: user.email, role: user.role };
    },
    verifyAccessToken: (token) => tokens.verify(token),
  };
}
