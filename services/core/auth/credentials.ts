import { z } from 'zod';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

/**
 * Emails are trimmed, NFC-normalised and lower-cased before they are validated and stored,
 * so `Ada@Example.com ` and `ada@example.com` are one account (the unique index agrees).
 */
export const Email = z.preprocess(
  (value) => (typeof value === 'string' ? value.trim().normalize('NFC').toLowerCase() : value),
  z.email('must be a valid email address').max(254),
);

export const RegisterBody = z
  .object({
    email: Email,
    password: z
      .string()
      .min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
      .max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`),
  })
  .strict();
export type RegisterBody = z.infer<typeof RegisterBody>;

/** Login checks shape only: the password policy may have changed since the account was made. */
export const LoginBody = z
  .object({
    email: Email,
    password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
  })
  .strict();
export type LoginBody = z.infer<typeof LoginBody>;

export const UserView = z.object({
  id: z.uuid(),
  email: z.string(),
  role: z.enum(['user', 'admin']),
});
export type UserView = z.infer<typeof UserView>;

export const RegisteredUser = UserView.pick({ id: true, email: true });
export type RegisteredUser = z.infer<typeof RegisteredUser>;

export const AccessTokenResponse = z.object({
  accessToken: z.string(),
  tokenType: z.literal('Bearer'),
  /** Seconds until the token expires. */
  expiresIn: z.number().int(),
});
export type AccessTokenResponse = z.infer<typeof AccessTokenResponse>;
