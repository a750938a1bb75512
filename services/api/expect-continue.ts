import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Tells a client that asked to be told before it sends its body (`Expect: 100-continue`)
 * to send it: called by a route once it has decided to read the body, so that a refusal
 * (over quota, over a limit, rate limited, unauthenticated) comes before any byte of it.
 * The server hands such requests to the app without answering 100 itself (see
 * createExpressServer). Once per request, however often it is called.
 */
export function continueBody(req: IncomingMessage, res: ServerResponse): void {
  if (continued.has(res) || !/^\s*100-continue\s*$/i.test(req.headers.expect ?? '')) return;
  continued.add(res);
  res.writeContinue();
}

const continued = new WeakSet<ServerResponse>();
