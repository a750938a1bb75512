import net, { type AddressInfo } from 'node:net';
import express from 'express';
import { createLogger } from '../../../services/core/logger';
import { jsonBody } from '../../../services/api/middleware/json-body';
import { provideRequestLogger, requestContext } from '../../../services/api/middleware/request-context';

/** Sends the body in two packets, so the parser finishes on a later socket read, not within the request's own tick. */
function postInTwoParts(port: number, requestId: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
    socket.on('end', () => resolve(response.slice(response.indexOf('\r\n\r\n') + 4)));
    socket.on('error', reject);
    socket.once('connect', () => {
      socket.write(
        `POST /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n` +
          `X-Request-Id: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 5)}`,
      );
      setTimeout(() => socket.write(body.slice(5)), 30);
    });
  });
}

describe('jsonBody', () => {
  it('hands the parsed body to the next handler, whose request logger carries the request id', async () => {
    const lines: { requestId?: string; id?: string }[] = [];
    const log = createLogger({ service: 'json-body-test', destination: { write: (line: string) => void lines.push(JSON.parse(line) as { requestId?: string; id?: string }) } });
    const app = express();
    provideRequestLogger(app, log);
    app.use(requestContext);
    app.post('/echo', jsonBody(1_024), (req, res) => {
      const body = req.body as { id: string };
      req.log.info({ id: body.id }, 'parsed');
      res.json({ body: req.body as unknown, requestId: req.requestId });
    });
    const server = app.listen(0);
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      const responses = await Promise.all(['a', 'b', 'c'].map((id) => postInTwoParts(port, `trace-${id}`, JSON.stringify({ id, padding: 'x'.repeat(40) }))));
      expect(responses.map((text) => JSON.parse(text) as unknown)).toEqual(
        ['a', 'b', 'c'].map((id) => ({ body: { id, padding: 'x'.repeat(40) }, requestId: `trace-${id}` })),
      );
      // Three requests in flight at once, each body finished on a later read: every line under its own request's id.
      expect(lines).toHaveLength(3);
      for (const line of lines) expect(line.requestId).toBe(`trace-${line.id}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
