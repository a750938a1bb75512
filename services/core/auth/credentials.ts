import { z } from 'zod';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, passwordProblem } from './password-policy';

export { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './password-policy';

/**
 * Emails are trimmed, NFC-normalised and lower-cased before they are validated and stored,
 * so `Ada@Example.com ` and `ada@example.com` are one account (the unique index agrees).
 * The document states zod's pattern beside `format: email`: that format alone admits
 * addresses zod refuses (`ada@localhost`, a one-letter top-level domain).
 */
export const Email = z.preprocess(
  (value) => (typeof value === 'string' ? value.trim().normalize('NFC').toLowerCase() : value),
  z.email('must be a valid email address').max(254).meta({ pattern: z.regexes.email.source }),
);

/**
 * A password being set: the length policy and the common-password list. The policy counts
 * characters (code points), as JSON Schema's minLength and maxLength do, so the document
 * states it as those; `.max` only bounds the UTF-16 text the policy is asked about.
 */
export const NewPassword = z
  .string()
  .max(PASSWORD_MAX_LENGTH * 4)
  .superRefine((password, context) => {
    const problem = passwordProblem(password);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  })
  .meta({
    minLength: PASSWORD_MIN_LENGTH,
    maxLength: PASSWORD_MAX_LENGTH,
    description: `${PASSWORD_MIN_LENGTH}-${PASSWORD_MAX_LENGTH} characters, not one of the most common passwords.`,
  });

export const RegisterBody = z.object({ email: Email, password: NewPassword }).strict();
export type RegisterBody = z.infer<typeof RegisterBody>;

/** Login checks shape only: the password policy may have changed since the account was made. */
export const LoginBody = z
  .object({
    email: Email,
    password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
  })
  .strict();
export type LoginBody = z.infer<typeof LoginBody>;

export const PasswordResetRequestBody = z.object({ email: Email }).strict();
export type PasswordResetRequestBody = z.infer<typeof PasswordResetRequestBody>;

export const PasswordResetConfirmBody = z
  .object({
    token: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be the token from the mail'),
    password: NewPassword,
  })
  .strict();
export type PasswordResetConfirmBody = z.infer<typeof PasswordResetConfirmBody>;

export const UserRoleSchema = z.enum(['user', 'admin']);

export const REASON_MAX_LENGTH = 500;

/** Why an operator changed an account, kept in its audit trail (free text: what prints it escapes control characters). */
export const AccountChangeReason = z.string().trim().min(1, 'must not be empty').max(REASON_MAX_LENGTH, `must be at most ${REASON_MAX_LENGTH} characters`);

export const UserView = z.object({
  id: z.uuid(),
  email: z.string(),
  role: UserRoleSchema,
});
export type UserView = z.infer<typeof UserView>;

/** What registration answers, whether or not the address was free: nothing that tells the two apart. */
export const RegistrationAccepted = z.object({
  email: z.string(),
  detail: z.string(),
});
export type RegistrationAccepted = z.infer<typeof RegistrationAccepted>;

export const AccessTokenResponse = z.object({
  accessToken: z.string(),
  tokenType: z.literal('Bearer'),
  /** Seconds until the token expires. */
  expiresIn: z.number().int(),
});
export type AccessTokenResponse = z.infer<typeof AccessTokenResponse>;
