import { InvalidObjectKeyError } from './object-store';

/**
 * Slash-separated segments of `[A-Za-z0-9._-]`: no absolute paths, no empty, `.` or `..`
 * segments, so a key can never leave the store's root on a filesystem nor alias another
 * key. The character set also keeps temp-file names (which use `~`) out of the key space.
 */
const KEY_PATTERN = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const MAX_KEY_LENGTH = 1_024;
/** Below NAME_MAX (255) with room for the temp-file affixes of the filesystem driver. */
const MAX_SEGMENT_LENGTH = 200;

export function assertValidObjectKey(key: string): void {
  const valid =
    key.length <= MAX_KEY_LENGTH &&
    KEY_PATTERN.test(key) &&
    key.split('/').every((segment) => segment !== '.' && segment !== '..' && segment.length <= MAX_SEGMENT_LENGTH);
  if (!valid) throw new InvalidObjectKeyError(key);
}
