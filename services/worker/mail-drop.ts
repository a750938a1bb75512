import nodemailer from 'nodemailer';
import type { ObjectStore } from '../core/storage/object-store';
import { MAIL_DROP_PREFIX } from '../core/storage/routed';
import type { MailDrop } from './processor';

/** `.invalid` (RFC 2606) because nothing delivers from the local mail drop. */
const DROP_SENDER = 'Platform Kit <no-reply@platform-kit.invalid>';

/** The object-store mail drop a worker hands to processors as `context.mailDrop` when SMTP_URL is unset. */
export function createMailDrop(store: ObjectStore, from = DROP_SENDER): MailDrop {
  return {
    from,
    async write(name, message, options = {}) {
      await store.put(`${MAIL_DROP_PREFIX}${name}`, message, { contentType: 'message/rfc822', signal: options.signal });
    },
  };
}

/** Delivers through an SMTP relay (nodemailer), the composed message as it is. */
export function createSmtpMailDrop(smtpUrl: string, from: string): MailDrop {
  const transport = nodemailer.createTransport(smtpUrl);
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return {
    from,
    async write(_name, message, options = {}) {
      if (!options.to) throw new Error('an SMTP delivery needs the recipient');
      options.signal?.throwIfAborted();
      await transport.sendMail({ envelope: { from: address, to: options.to }, raw: message });
    },
  };
}
