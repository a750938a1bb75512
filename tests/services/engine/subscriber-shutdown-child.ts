/**
 * A process of its own for channel-subscription.test.ts, where Node's default for an
 * unhandled rejection applies (it ends the process; jest's sandbox hides it from a test):
 * a subscriber connection drops, is back with its SUBSCRIBE sent, and is closed (a shutdown
 * right after a Redis failover) before Redis's answer is read. Exits 0 when nothing was
 * left unhandled.
 */
import { createLogger } from '../../../services/core/logger';
import { createRedisConnection } from '../../../services/core/queue/connection';
import { ChannelSubscription } from '../../../services/core/queue/subscription';

async function main(): Promise<void> {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is required');
  const subscriber = createRedisConnection(url, 'subscriber');
  const subscription = new ChannelSubscription(subscriber, 'pk-test:drop', { log: createLogger({ service: 'test', level: 'silent' }), what: 'a test channel' });
  await subscription.subscribed;
  const nextReady = (then: () => void) => new Promise<void>((resolve) => subscriber.once('ready', () => resolve(then())));

  subscriber.stream.destroy();
  await nextReady(() => {
    subscription.close();
    subscriber.disconnect();
    // At once: the answer to the SUBSCRIBE just sent is never read.
    subscriber.stream.destroy();
  });
  // Long enough for a rejection left unhandled to end the process.
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.stdout.write('closed, nothing unhandled\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(2);
});
