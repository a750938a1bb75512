import type { Response } from 'express';
import { TooManyRequestsError } from './errors';

/**
 * Counts an owner's requests of one kind while their responses are open, and refuses (429)
 * one more than `most`: for work that holds a socket and memory, disk or an open object for
 * as long as its client takes, which a rate limit alone would let one owner pile up.
 */
export function atOncePerOwner(most: number, what: string, retryAfterSeconds: number): (owner: string, res: Response) => void {
  const underWay = new Map<string, number>();
  return (owner, res) => {
    const atOnce = underWay.get(owner) ?? 0;
    if (atOnce >= most) throw new TooManyRequestsError(`At most ${most} ${what} of one user are served at once; let one finish first.`, retryAfterSeconds);
    underWay.set(owner, atOnce + 1);
    // Closed once the response is sent or the connection is gone.
    res.once('close', () => {
      const left = (underWay.get(owner) ?? 1) - 1;
      if (left > 0) underWay.set(owner, left);
      else underWay.delete(owner);
    });
  };
}
