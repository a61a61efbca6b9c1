/** Koa glue over the framework-neutral handler (cloud-defer/koa). */
import type { IncomingMessage } from 'node:http';
import type { Deferred } from '../deferred.js';
import { engineFor, startInBackground } from '../default-instance.js';
import { alreadyParsedBody, readStream, type NeutralResponse } from './handler.js';
import { pathWithoutQuery, routeFor, warnUnmatchedDelivery, type Route } from './mount.js';

/** The part of Koa's context the glue uses; keeps koa itself an optional peer dependency. */
export interface KoaLikeContext {
  method: string;
  path: string;
  /** The URL before koa-mount stripped its prefix (Koa's ctx.originalUrl). */
  originalUrl?: string;
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

/** The few @koa/router methods the glue exposes; the object is a real `@koa/router` Router. */
export interface KoaRouterLike {
  routes(): KoaMiddleware;
  allowedMethods(): KoaMiddleware;
}

export interface KoaDeferredMiddleware extends KoaMiddleware {
  /** `router.use(mw.routes())`, `app.use(mw.routes())`: the routes of `router` (needs @koa/router). */
  routes(): KoaMiddleware;
  /** @koa/router habit; the handler answers 405 itself. */
  allowedMethods(): KoaMiddleware;
}

export interface KoaDeferred {
  /** For `app.use(...)`, or `app.use(mount('/tasks', ...))` with koa-mount. */
  middleware: KoaDeferredMiddleware;
  /**
   * A real @koa/router Router with the handler, sweep and console paths as routes: use it with
   * `router.use(tasks.router.routes())`, `router.use('/prefix', tasks.router.routes())`, nested
   * routers or koa-mount. (@koa/router runs `router.use()` middleware only when one of its own
   * routes matched, so a bare middleware handed to a router is never reached.)
   */
  router: KoaRouterLike;
}

async function serve(ctx: KoaLikeContext, route: Route): Promise<void> {
  const response: NeutralResponse = await route.handler.handle({
    method: ctx.method,
    path: route.path,
    headers: ctx.headers,
    remoteAddress: ctx.req.socket?.remoteAddress,
    query: ctx.querystring ?? '',
    secure: ctx.secure === true,
    readBody: async (limit) => alreadyParsedBody(ctx.request.rawBody, limit) ?? alreadyParsedBody(ctx.request.body, limit) ?? readStream(ctx.req, limit),
  });
  ctx.status = response.status;
  for (const [name, value] of Object.entries(response.headers)) ctx.set(name, value);
  ctx.body = response.body;
}

type RouterConstructor = new () => {
  all(path: string, middleware: (ctx: KoaLikeContext & { params: Record<string, string | undefined> }) => Promise<void>): unknown;
  routes(): KoaMiddleware;
  allowedMethods(): KoaMiddleware;
};

/** @koa/router is an optional peer: loaded only when a router is asked for. */
function buildRouter(engine: Deferred): KoaRouterLike {
  let Router: RouterConstructor;
  try {
    Router =
      (require('@koa/router') as { Router?: RouterConstructor; default?: RouterConstructor }).Router ??
      (require('@koa/router') as { default: RouterConstructor }).default;
  } catch (err) {
    throw new Error('koaDeferred(...).router needs @koa/router: npm install @koa/router (or use .middleware with app.use / koa-mount).', { cause: err });
  }
  const router = new Router();
  for (const path of [engine.handlerPath, engine.sweepPath]) router.all(path, (ctx) => serve(ctx, { handler: engine.handler, path }));
  const consoleHandler = engine.consoleHandler;
  if (consoleHandler) {
    // `{/*rest}` matches the console path itself and everything under it.
    router.all(`${consoleHandler.path}{/*rest}`, (ctx) => {
      const rest = ctx.params.rest;
      const tail = rest ? `/${Array.isArray(rest) ? rest.join('/') : rest}` : ctx.path.endsWith('/') ? '/' : '';
      return serve(ctx, { handler: consoleHandler, path: `${consoleHandler.path}${tail}` });
    });
  }
  return router;
}

/**
 * `const tasks = koaDeferred()` (the default instance) or `koaDeferred(engine)`: `app.use(tasks.middleware)`
 * or `router.use(tasks.router.routes())`. Mounting starts the engine (see ready()).
 */
export function koaDeferred(deferred?: Deferred): KoaDeferred {
  const engine = engineFor(deferred, 'koaDeferred');
  startInBackground(engine);
  let router: KoaRouterLike | undefined;
  const routerOf = (): KoaRouterLike => {
    router ??= buildRouter(engine);
    return router;
  };
  const plain: KoaMiddleware = async (ctx, next) => {
    const full = pathWithoutQuery(ctx.originalUrl ?? ctx.path);
    const route = routeFor(engine, ctx.path, full);
    if (!route) {
      warnUnmatchedDelivery(engine, ctx.method, full, full.endsWith(ctx.path) ? full.slice(0, full.length - ctx.path.length) : '', ctx.headers);
      await next();
      return;
    }
    await serve(ctx, route);
  };
  const middleware: KoaDeferredMiddleware = Object.assign(plain, {
    routes: () => routerOf().routes(),
    allowedMethods: () => routerOf().allowedMethods(),
  });
  return {
    middleware,
    get router() {
      return routerOf();
    },
  };
}

/**
 * `app.use(koaDeferredMiddleware())`: serves the task handler path and, when enabled, the console
 * (see docs/console.md); passes everything else on. For @koa/router, use `.routes()` or koaDeferred().router.
 */
export function koaDeferredMiddleware(deferred?: Deferred): KoaDeferredMiddleware {
  return koaDeferred(deferred === undefined ? undefined : engineFor(deferred, 'koaDeferredMiddleware')).middleware;
}

export type { Deferred };
