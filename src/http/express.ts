/** Express (4 and 5) glue over the framework-neutral handler; also works with plain node:http. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deferred } from '../deferred.js';
import { alreadyParsedBody, readStream, type NeutralResponse } from './handler.js';

type ExpressRequest = IncomingMessage & { path?: string; body?: unknown; secure?: boolean };
type Next = (err?: unknown) => void;

export type ExpressMiddleware = (req: ExpressRequest, res: ServerResponse, next: Next) => void;

function pathOf(req: ExpressRequest): string {
  if (typeof req.path === 'string') return req.path;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function queryOf(req: ExpressRequest): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

function send(res: ServerResponse, response: NeutralResponse): void {
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  res.end(response.body);
}

/**
 * `app.use(deferredMiddleware(deferred))`: serves the task handler path and, when enabled, the
 * console (see docs/console.md); passes everything else on.
 */
export function deferredMiddleware(deferred: Deferred): ExpressMiddleware {
  return (req, res, next) => {
    const path = pathOf(req);
    const handler = deferred.consoleHandler?.owns(path) ? deferred.consoleHandler : deferred.handler;
    if (!handler.owns(path)) return next();
    handler
      .handle({
        method: req.method ?? 'GET',
        path,
        headers: req.headers,
        remoteAddress: req.socket?.remoteAddress,
        query: queryOf(req),
        secure: req.secure ?? (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true,
        readBody: async (limit) => alreadyParsedBody(req.body, limit) ?? readStream(req, limit),
      })
      .then((response) => send(res, response), next);
  };
}
