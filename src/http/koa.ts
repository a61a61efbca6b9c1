/** Koa glue over the framework-neutral handler (cloud-defer/koa). */
import type { IncomingMessage } from 'node:http';
import type { Deferred } from '../deferred.js';
import { alreadyParsedBody, readStream } from './handler.js';

/** The part of Koa's context the glue uses; keeps koa itself an optional peer dependency. */
export interface KoaLikeContext {
  method: string;
  path: string;
  /** The raw query string (Koa's ctx.querystring). */
  querystring?: string;
  /** Koa's ctx.secure (honours app.proxy). */
  secure?: boolean;
  headers: IncomingMessage['headers'];
  req: IncomingMessage;
  request: { body?: unknown; rawBody?: unknown };
  status: number;
  body: unknown;
  set(field: string, value: string): void;
}

export type KoaMiddleware = (ctx: KoaLikeContext, next: () => Promise<unknown>) => Promise<void>;

export interface KoaDeferredMiddleware extends KoaMiddleware {
  /** @koa/router habit: `app.use(mw.routes())`. */
  routes(): KoaMiddleware;
  /** @koa/router habit; the handler answers 405 itself, so this passes through. */
  allowedMethods(): KoaMiddleware;
}

/**
 * `app.use(koaDeferredMiddleware(deferred))`: serves the task handler path and, when enabled, the
 * console (see docs/console.md); passes everything else on.
 */
export function koaDeferredMiddleware(deferred: Deferred): KoaDeferredMiddleware {
  const middleware: KoaMiddleware = async (ctx, next) => {
    const handler = deferred.consoleHandler?.owns(ctx.path) ? deferred.consoleHandler : deferred.handler;
    if (!handler.owns(ctx.path)) {
      await next();
      return;
    }
    const response = await handler.handle({
      method: ctx.method,
      path: ctx.path,
      headers: ctx.headers,
      remoteAddress: ctx.req.socket?.remoteAddress,
      query: ctx.querystring ?? '',
      secure: ctx.secure === true,
      readBody: async (limit) =>
        alreadyParsedBody(ctx.request.rawBody, limit) ?? alreadyParsedBody(ctx.request.body, limit) ?? readStream(ctx.req, limit),
    });
    ctx.status = response.status;
    for (const [name, value] of Object.entries(response.headers)) ctx.set(name, value);
    ctx.body = response.body;
  };
  return Object.assign(middleware, {
    routes: () => middleware,
    allowedMethods: (): KoaMiddleware => async (_ctx, next) => {
      await next();
    },
  });
}

export type { Deferred };
