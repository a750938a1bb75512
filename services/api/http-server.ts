import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import { Socket } from 'node:net';
import type { Express } from 'express';
import { answerClientError } from './problem';

/** Node's request and response constructors, as this module finds them (tests hand in others). */
export interface NodeHttpConstructors {
  IncomingMessage: typeof IncomingMessage;
  ServerResponse: typeof ServerResponse;
}

/**
 * The performance seam of the HTTP layer: a Node HTTP server for an Express app whose
 * requests and responses are created with the app's own prototypes (`app.request`,
 * `app.response`), through Node's documented `IncomingMessage`/`ServerResponse` server
 * options. Express re-parents every request and response it is handed; done to objects
 * Node already built, that changes their hidden class and slows Node's own http code down
 * (bench/FINDINGS.md has the figures). With the prototype already in place, Express's
 * re-parenting changes nothing, and the objects are still IncomingMessage and ServerResponse.
 *
 * The subclasses call Node's constructors as plain functions, which Node 20 allows. Whether
 * that works is tried, not assumed: one request and one response are built at startup, and
 * if that fails or yields anything but instances with the app's prototypes, the app is
 * served the ordinary way (`createServer(app)`).
 */
export function createExpressServer(app: Express, node: NodeHttpConstructors = { IncomingMessage, ServerResponse }): Server {
  const constructors = appConstructors(app, node);
  const server = constructors ? createServer(constructors, app) : createServer(app);
  server.on('clientError', answerClientError);
  // Node would answer `Expect: 100-continue` at once, before any route could refuse the
  // request: the client would then send a body only to have it refused. The routes that
  // read a body say 100 Continue themselves once they take it (continueBody).
  server.on('checkContinue', app);
  return server;
}

function appConstructors(app: Express, node: NodeHttpConstructors): NodeHttpConstructors | undefined {
  const initRequest = node.IncomingMessage as unknown as (this: IncomingMessage, ...args: unknown[]) => void;
  const initResponse = node.ServerResponse as unknown as (this: ServerResponse, ...args: unknown[]) => void;
  function AppRequest(this: IncomingMessage, ...args: unknown[]): void {
    initRequest.apply(this, args);
  }
  AppRequest.prototype = app.request;
  function AppResponse(this: ServerResponse, ...args: unknown[]): void {
    initResponse.apply(this, args);
  }
  AppResponse.prototype = app.response;
  const constructors = {
    IncomingMessage: AppRequest as unknown as typeof IncomingMessage,
    ServerResponse: AppResponse as unknown as typeof ServerResponse,
  };
  return worksAsNodeWould(constructors, app, node) ? constructors : undefined;
}

/** Builds one request and one response the way Node's server does, and checks what comes out. */
function worksAsNodeWould(constructors: NodeHttpConstructors, app: Express, node: NodeHttpConstructors): boolean {
  const socket = new Socket();
  try {
    const request = new constructors.IncomingMessage(socket);
    const response = new constructors.ServerResponse(request);
    return (
      request instanceof node.IncomingMessage &&
      response instanceof node.ServerResponse &&
      Object.getPrototypeOf(request) === app.request &&
      Object.getPrototypeOf(response) === app.response &&
      typeof request.headers === 'object' &&
      typeof response.setHeader === 'function'
    );
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}
