import type { ObjectStore } from '../core/storage/object-store';
import type { Outbox } from './processor';

export const OUTBOX_PREFIX = 'outbox/';

/** The object-store mail drop a worker hands to processors as `context.outbox`. */
export function createOutbox(store: ObjectStore): Outbox {
  return {
    async write(name, message, signal) {
      await store.put(`${OUTBOX_PREFIX}${name}`, message, { contentType: 'message/rfc822', signal });
    },
  };
}
