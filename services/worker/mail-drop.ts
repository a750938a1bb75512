import type { ObjectStore } from '../core/storage/object-store';
import { MAIL_DROP_PREFIX } from '../core/storage/routed';
import type { MailDrop } from './processor';

/** The object-store mail drop a worker hands to processors as `context.mailDrop`. */
export function createMailDrop(store: ObjectStore): MailDrop {
  return {
    async write(name, message, signal) {
      await store.put(`${MAIL_DROP_PREFIX}${name}`, message, { contentType: 'message/rfc822', signal });
    },
  };
}
