/** Test harness: a real Express or Koa server on 127.0.0.1 with a Deferred on the embedded emulator. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as http from 'node:http';
import express from 'express';
import Koa from 'koa';
import { createDeferred, deferredMiddleware, type CreateDeferredOptions, type Deferred, type Logger } from '../../src/index.js';
import { koaDeferredMiddleware } from '../../src/http/koa.js';

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

/** A logger that keeps what it was told, so tests can assert on logging. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (message, fields) => lines.push({ level: 'info', message, ...(fields ? { fields } : {}) }),
    warn: (message, fields) => lines.push({ level: 'warn', message, ...(fields ? { fields } : {}) }),
    error: (message, fields) => lines.push({ level: 'error', message, ...(fields ? { fields } : {}) }),
  };
}

export interface TestApp {
  deferred: Deferred;
  server: http.Server;
  baseUrl: string;
  handlerUrl: string;
  logger: ReturnType<typeof recordingLogger>;
  close(): Promise<void>;
}

export type Framework = 'express' | 'koa';

/**
 * Starts the app first, then points the Deferred at its real port, then starts the engine (and its
 * embedded emulator), so every task goes emulator -> HTTP -> this app.
 */
export async function startApp(framework: Framework, options: CreateDeferredOptions = {}, setup?: (deferred: Deferred) => void): Promise<TestApp> {
  const logger = recordingLogger();
  const deferred = createDeferred({ logger, ...options });
  setup?.(deferred);
  let server: http.Server;
  if (framework === 'express') {
    const app = express();
    app.use(deferredMiddleware(deferred));
    app.get('/health', (_req, res) => {
      res.send('ok');
    });
    server = http.createServer(app);
  } else {
    const app = new Koa();
    const middleware = koaDeferredMiddleware(deferred);
    app.use(middleware.routes());
    app.use(middleware.allowedMethods());
    app.use(async (ctx) => {
      if (ctx.path === '/health') ctx.body = 'ok';
    });
    server = http.createServer(app.callback());
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const handlerUrl = `${baseUrl}${deferred.handlerPath}`;
  if (!(options.target && 'appEngine' in options.target) && !(options.target && options.target.url)) {
    deferred.setTargetUrl(handlerUrl);
  }
  await deferred.ready();
  return {
    deferred,
    server,
    baseUrl,
    handlerUrl,
    logger,
    async close() {
      await deferred.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Waits until `predicate` holds, polling; fails with `what` after `timeoutMs`. */
export async function eventually<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
