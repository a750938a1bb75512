import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { WorkerProcess } from '../../../services/worker/main';
import { composeMessage } from '../../../services/worker/jobs/email-send';
import { createSmtpMailDrop } from '../../../services/worker/mail-drop';
import { waitFor } from '../engine/fixture';
import { call, signUp, startApi, type ApiFixture } from './fixture';
import { startWorkerFor } from './worker-process';

interface Received {
  from: string;
  to: string[];
  raw: string;
}

/** A real SMTP server on a free port that keeps every message it is given. */
async function startSmtpServer(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function headerLines(raw: string): string[] {
  return raw.slice(0, raw.indexOf('\r\n\r\n')).split('\r\n');
}

/** Every text column of every table's rows, as one string per table, to search for a secret anywhere in the database. */
async function tablesContaining(api: ApiFixture, needle: string): Promise<string[]> {
  const { rows: tables } = await api.db.query<{ name: string }>("SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'");
  const found: string[] = [];
  for (const { name } of tables) {
    const { rows } = await api.db.query<{ hit: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${name} t WHERE strpos(t::text, $1) > 0) AS hit`, [needle]);
    if (rows[0]?.hit) found.push(name);
  }
  return found;
}

describe('mail through SMTP when SMTP_URL is set', () => {
  let api: ApiFixture;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let worker: WorkerProcess;
  const sender = 'Platform Kit <no-reply@mail.example.com>';

  beforeAll(async () => {
    smtp = await startSmtpServer();
    api = await startApi({ env: { PASSWORD_RESET_TTL_SECONDS: '600' } });
    worker = await startWorkerFor(api, { SMTP_URL: smtp.url, MAIL_FROM: sender });
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.close();
    await smtp?.close();
  });

  it('delivers the reset mail to the account\'s address only; once sent, the token is in no table, and it resets the password', async () => {
    const { email } = await signUp(api);
    expect((await call(api, '/v1/auth/password-reset', { json: { email } })).status).toBe(202);
    const message = await waitFor('the reset mail at the SMTP server', async () => smtp.received.find((item) => item.to.includes(email)), 30_000);
    expect(message.to).toEqual([email]);
    expect(message.from).toBe('no-reply@mail.example.com');
    const headers = headerLines(message.raw);
    expect(headers).toContain(`To: ${email}`);
    expect(headers).toContain(`From: ${sender}`);
    expect(headers.filter((line) => /^(To|From|Subject|Cc|Bcc):/i.test(line)).map((line) => line.split(':')[0])).toEqual(['From', 'To', 'Subject']);
    const token = /Reset token[^:]*: ([A-Za-z0-9_-]{43})/.exec(message.raw)?.[1] ?? '';
    expect(token).toHaveLength(43);
    expect(message.raw).toContain(`Set a new password at ${api.env.PUBLIC_URL}/reset#token=${token}\r\n`);

    await waitFor('the mail job to succeed', async () => {
      const { rows } = await api.db.query<{ status: string }>("SELECT status FROM jobs WHERE type = 'email.send' AND input->>'to' = $1", [email]);
      return rows[0]?.status === 'succeeded';
    });
    expect(await tablesContaining(api, token)).toEqual([]);
    const { rows } = await api.db.query<{ input: Record<string, unknown> }>("SELECT input FROM jobs WHERE type = 'email.send' AND input->>'to' = $1", [email]);
    expect(rows[0]?.input).toEqual({ to: email, subject: expect.any(String) });
    const redis = api.core.redis.client;
    const keys = await redis.keys(`${api.env.QUEUE_PREFIX}*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'string') expect(await redis.get(key)).not.toContain(token);
      if (type === 'hash') expect(JSON.stringify(await redis.hgetall(key))).not.toContain(token);
      if (type === 'list') expect(JSON.stringify(await redis.lrange(key, 0, -1))).not.toContain(token);
      if (type === 'stream') expect(JSON.stringify(await redis.xrange(key, '-', '+'))).not.toContain(token);
    }

    expect((await call(api, '/v1/auth/password-reset/confirm', { json: { token, password: 'a brand new passphrase' } })).status).toBe(204);
    expect((await call(api, '/v1/auth/login', { json: { email, password: 'a brand new passphrase' } })).status).toBe(200);
  });

  it('keeps line breaks out of the headers: a hostile subject adds no header and no recipient', async () => {
    const drop = createSmtpMailDrop(smtp.url, sender);
    const to = 'victim@example.com';
    const message = composeMessage({
      messageId: '<injection-test@platform-kit>',
      from: sender,
      to,
      subject: 'Hello\r\nBcc: attacker@example.net\r\nX-Injected: yes',
      text: 'body\r\n.\r\nMAIL FROM:<attacker@example.net>',
      date: new Date(),
    });
    await drop.write('injection.eml', message, { to });
    const delivered = await waitFor('the message at the SMTP server', async () => smtp.received.find((item) => item.raw.includes('<injection-test@platform-kit>')));
    expect(delivered.to).toEqual([to]);
    const headers = headerLines(delivered.raw);
    expect(headers.some((line) => /^(Bcc|X-Injected):/i.test(line))).toBe(false);
    expect(headers.filter((line) => line.startsWith('Subject:'))).toEqual(['Subject: Hello Bcc: attacker@example.net X-Injected: yes']);
    expect(smtp.received.some((item) => item.to.includes('attacker@example.net'))).toBe(false);
  });
});
