import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

const sockets = new WeakMap<Server, Set<Socket>>();

/** A PostgreSQL authentication request: 'R', the length, the request's code, its data. */
function authentication(code: number, data: string): Buffer {
  const body = Buffer.from(data, 'latin1');
  const head = Buffer.alloc(9);
  head.write('R', 0);
  head.writeInt32BE(8 + body.length, 1);
  head.writeInt32BE(code, 5);
  return Buffer.concat([head, body]);
}

/**
 * A server that asks for SCRAM-SHA-256 as a real one with password authentication does: the
 * mechanism after the startup message (10), the server-first message after the client's (11).
 * pg, given no password, then fails on the client side and keeps the socket open. Like
 * PostgreSQL before its authentication_timeout, it closes a connection only when the client does.
 */
export function scramAskingServer(): Promise<Server> {
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    const replies = [authentication(10, 'SCRAM-SHA-256\0\0'), authentication(11, 'r=client-nonce-server-nonce,s=c2FsdA==,i=4096')];
    socket.on('data', () => {
      const reply = replies.shift();
      if (reply) socket.write(reply);
    });
    socket.on('error', () => undefined);
  });
  sockets.set(server, open);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Stops the server and drops what connections a client left open, so a test that finds one does not keep jest from exiting. */
export function closeScramAskingServer(server: Server): void {
  server.close();
  for (const socket of sockets.get(server) ?? []) socket.destroy();
}

/** A DATABASE_URL for the server, with no password: pg fails on the client side. */
export function passwordlessUrl(server: Server): string {
  return `postgres://platform@127.0.0.1:${(server.address() as AddressInfo).port}/platform`;
}

/** Connections the server holds open right now. */
export function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}
