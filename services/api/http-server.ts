import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { Express } from 'express';

/**
 * A Node HTTP server for an Express app whose requests and responses are created with the
 * app's own prototypes (`app.request`, `app.response`), through Node's documented
 * `IncomingMessage`/`ServerResponse` server options.
 *
 * Express re-parents every request and response it is handed (`Object.setPrototypeOf`).
 * Done to objects Node has already built, that gives each of them a new hidden class, and
 * Node's own http code then runs on objects of a shape its inline caches have not seen:
 * measured on the bare stack (Express 5 + helmet + JSON body, bench/http-floor-server.ts),
 * 139 µs of CPU per request served by a plain `createServer(app)`, 66 µs served by this.
 * With the prototype already in place, Express's `setPrototypeOf` changes nothing, and the
 * objects are still `IncomingMessage` and `ServerResponse` instances.
 */
export function createExpressServer(app: Express): Server {
  // The constructors below call Node's as plain functions, which Node 20 defines them as.
  // Should a later Node make them classes, serve the app the ordinary way rather than fail.
  // (Reflect.construct with a new.target would work for both, but V8 builds those objects
  // on a slow path: 195 µs per request on the same bench.)
  if (isClass(IncomingMessage) || isClass(ServerResponse)) return createServer(app);

  const initRequest = IncomingMessage as unknown as (this: IncomingMessage, ...args: unknown[]) => void;
  const initResponse = ServerResponse as unknown as (this: ServerResponse, ...args: unknown[]) => void;
  function AppRequest(this: IncomingMessage, ...args: unknown[]): void {
    initRequest.apply(this, args);
  }
  AppRequest.prototype = app.request;
  function AppResponse(this: ServerResponse, ...args: unknown[]): void {
    initResponse.apply(this, args);
  }
  AppResponse.prototype = app.response;

  return createServer(
    {
      IncomingMessage: AppRequest as unknown as typeof IncomingMessage,
      ServerResponse: AppResponse as unknown as typeof ServerResponse,
    },
    app,
  );
}

function isClass(constructor: unknown): boolean {
  return typeof constructor === 'function' && /^class\b/.test(Function.prototype.toString.call(constructor));
}
