import type { Response } from 'express';
import { TooManyRequestsError } from './errors';

/**
 * Counts an owner's pieces of work of one kind under way, and refuses (429, with `refusal`'s
 * text) one more than `most`. Taking a place returns its release, which the caller calls
 * once, when the work is over.
 */
export function placesPerOwner(most: number, refusal: string, retryAfterSeconds: number): (owner: string) => () => void {
  const underWay = new Map<string, number>();
  return (owner) => {
    const atOnce = underWay.get(owner) ?? 0;
    if (atOnce >= most) throw new TooManyRequestsError(refusal, retryAfterSeconds);
    underWay.set(owner, atOnce + 1);
    return () => {
      const left = (underWay.get(owner) ?? 1) - 1;
      if (left > 0) underWay.set(owner, left);
      else underWay.delete(owner);
    };
  };
}

/**
 * An owner's requests of one kind counted while their responses are open (placesPerOwner):
 * for work that holds a socket and memory, disk or an open object for as long as its client
 * takes, which a rate limit alone would let one owner pile up.
 */
export function atOncePerOwner(most: number, what: string, retryAfterSeconds: number): (owner: string, res: Response) => void {
  const take = placesPerOwner(most, `At most ${most} ${what} of one user are served at once; let one finish first.`, retryAfterSeconds);
  return (owner, res) => {
    // Closed once the response is sent or the connection is gone.
    res.once('close', take(owner));
  };
}
