/** Express (4 and 5) glue over the framework-neutral handler; also works with plain node:http. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deferred } from '../deferred.js';
import { engineFor, startInBackground } from '../default-instance.js';
import { alreadyParsedBody, readStream, type NeutralResponse } from './handler.js';
import { pathWithoutQuery, routeFor, warnUnmatchedDelivery } from './mount.js';

type ExpressRequest = IncomingMessage & { path?: string; body?: unknown; secure?: boolean; originalUrl?: string; baseUrl?: string };
type Next = (err?: unknown) => void;

export type ExpressMiddleware = (req: ExpressRequest, res: ServerResponse, next: Next) => void;

function queryOf(req: ExpressRequest): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

function send(res: ServerResponse, response: NeutralResponse): void {
  // writeHead with the whole set: one call instead of a setHeader (and its validation) per header.
  // With its length the answer goes out in one write, not chunked (Cloud Tasks reads the status only).
  // (Every NeutralResponse is built for its one request, so adding to its headers is safe.)
  const headers = response.headers;
  if (response.status !== 204 && response.status !== 304) headers['Content-Length'] = String(Buffer.byteLength(response.body));
  res.writeHead(response.status, headers);
  res.end(response.body);
}

/**
 * `app.use(deferredMiddleware())` (the default instance) or `app.use(deferredMiddleware(engine))`:
 * serves the task handler path and, when enabled, the console (see docs/console.md); passes
 * everything else on. Works mounted at a prefix or in an express.Router(): the handler path
 * matches relative to the mount or as the full path (see README, "Mounting under a path").
 * Mounting starts the engine (see ready()), so the first defer is as quick as the next.
 */
export function deferredMiddleware(deferred?: Deferred): ExpressMiddleware {
  const engine = engineFor(deferred, 'deferredMiddleware');
  startInBackground(engine);
  return (req, res, next) => {
    const relative = typeof req.path === 'string' ? req.path : pathWithoutQuery(req.url ?? '/');
    const full = pathWithoutQuery(req.originalUrl ?? req.url ?? '/');
    const route = routeFor(engine, relative, full);
    if (!route) {
      warnUnmatchedDelivery(engine, req.method ?? 'GET', full, req.baseUrl ?? '', req.headers);
      return next();
    }
    route.handler
      .handle({
        method: req.method ?? 'GET',
        path: route.path,
        headers: req.headers,
        remoteAddress: req.socket?.remoteAddress,
        query: queryOf(req),
        secure: req.secure ?? (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true,
        readBody: async (limit) => alreadyParsedBody(req.body, limit) ?? readStream(req, limit),
      })
      .then((response) => send(res, response), next);
  };
}
