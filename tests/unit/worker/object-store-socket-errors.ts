/**
 * Run as a plain Node process (`node -r @swc-node/register`), not under jest: jest's module
 * sandbox has an Error of its own, so Node's socket errors fail the SDK's `instanceof Error`
 * and reach the caller rewrapped, without their code. Here they arrive as in production.
 * Prints one JSON line per case: the error's shape and how infrastructureFailure classifies it.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { S3ObjectStore } from '../../../services/core/storage/s3';
import { infrastructureFailure } from '../../../services/worker/infrastructure-failure';

async function listen(onConnection: (socket: Socket) => void): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function main(): Promise<void> {
  const resetting = await listen((socket) => socket.resetAndDestroy());
  const silent = await listen(() => undefined);
  const closed = await listen(() => undefined);
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const cases: [string, number][] = [
    ['reset', (resetting.address() as AddressInfo).port],
    ['silent', (silent.address() as AddressInfo).port],
    ['refused', closedPort],
  ];
  for (const [name, port] of cases) {
    const store = new S3ObjectStore({
      bucket: 'platform-bucket',
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-for-signing-only' },
      connectionTimeoutMs: 300,
      requestTimeoutMs: 300,
    });
    const error = (await store.get('files/owner/file').then(
      () => undefined,
      (rejection: unknown) => rejection,
    )) as { name?: string; code?: string; $metadata?: object } | undefined;
    store.client.destroy();
    process.stdout.write(`${JSON.stringify({ case: name, name: error?.name, code: error?.code, metadata: error?.$metadata !== undefined, classified: infrastructureFailure(error) ?? null })}\n`);
  }
  resetting.close();
  silent.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
