import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ApiFixture } from './fixture';

export interface DroppedResetMail {
  /** The token, as the mail's "Reset token" line gives it. */
  token: string;
  /** The link the mail gives to set a new password. */
  link: string;
}

/**
 * The newest reset mail to `email` that `seen` does not hold yet, as the worker dropped it
 * (mail/<jobId>.eml in the object store when SMTP_URL is unset); adds its name to `seen`.
 */
export async function droppedResetMail(api: Pick<ApiFixture, 'env'>, email: string, seen: Set<string>, timeoutMs = 30_000): Promise<DroppedResetMail> {
  const directory = path.join(api.env.OBJECT_STORE_DIR, 'mail');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const names = await readdir(directory).catch(() => [] as string[]);
    // The store writes a hidden `.partial` file and renames it into place: only finished mails end in .eml.
    for (const name of names) {
      if (seen.has(name) || !name.endsWith('.eml')) continue;
      // Reset mails are ASCII with short lines, so the drop holds them as 7bit text, readable as is.
      const message = await readFile(path.join(directory, name), 'utf8');
      const token = /Reset token[^:]*: ([A-Za-z0-9_-]{43})/.exec(message)?.[1];
      const link = /^Set a new password at (\S+)\r?$/m.exec(message)?.[1];
      if (message.includes(`To: ${email}`) && token && link) {
        seen.add(name);
        return { token, link };
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no reset mail for ${email} in ${directory} within ${timeoutMs} ms`);
}
