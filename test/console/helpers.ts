/** Shared bits of the console tests: a signed-in API client and an app reachable from a LAN address. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as http from 'node:http';
import { networkInterfaces } from 'node:os';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { createDeferred, deferredMiddleware, type CreateDeferredOptions, type Deferred } from '../../src/index.js';
import { koaDeferredMiddleware } from '../../src/http/koa.js';
import type { Framework } from '../helpers/app.js';

export const CONSOLE = '/_ah/deferred/console';
export const API = `${CONSOLE}/api`;

/** A browser-like client: has the session cookie and token, and sends the console's own Origin. */
export interface ConsoleClient {
  agent: ReturnType<typeof request.agent>;
  token: string;
  get(path: string): request.Test;
  post(path: string): request.Test;
}

export async function signIn(baseUrl: string, headers: Record<string, string> = {}): Promise<ConsoleClient> {
  const agent = request.agent(baseUrl);
  const session = await agent.get(`${API}/session`).set(headers).expect(200);
  const token = (session.body as { csrfToken: string }).csrfToken;
  return {
    agent,
    token,
    get: (path) => agent.get(`${API}${path}`).set(headers),
    post: (path) => agent.post(`${API}${path}`).set(headers).set('Origin', baseUrl).set('Sec-Fetch-Site', 'same-origin').set('X-Cloud-Defer-CSRF', token),
  };
}

/** The first IPv4 address of this machine that is not loopback (to send a request from "elsewhere"). */
export function lanAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const net of list ?? []) if (net.family === 'IPv4' && !net.internal) return net.address;
  }
  throw new Error('This machine has no non-loopback IPv4 interface, so the "request from another machine" test cannot run.');
}

export interface OpenApp {
  deferred: Deferred;
  /** http://127.0.0.1:port */
  baseUrl: string;
  /** The same server through a non-loopback address. */
  lanUrl: string;
  close(): Promise<void>;
}

/**
 * Like test/helpers/app.ts but listening on every interface, so a request can arrive from a
 * non-loopback address. `start: false` leaves the engine unstarted (modes that need Google).
 */
export async function startOpenApp(framework: Framework, options: CreateDeferredOptions, start = true): Promise<OpenApp> {
  const deferred = createDeferred({ logger: false, ...options });
  let server: http.Server;
  if (framework === 'express') {
    const app = express();
    app.use(deferredMiddleware(deferred));
    server = http.createServer(app);
  } else {
    const app = new Koa();
    app.use(koaDeferredMiddleware(deferred));
    server = http.createServer(app.callback());
  }
  server.listen(0, '0.0.0.0');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  if (start) {
    deferred.setTargetUrl(`${baseUrl}${deferred.handlerPath}`);
    await deferred.ready();
  }
  return {
    deferred,
    baseUrl,
    lanUrl: `http://${lanAddress()}:${port}`,
    async close() {
      await deferred.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Every path the console answers, with a method; ids and queue names are real ones from the app. */
export function consolePaths(taskId: string, iterationId: string, queue: string): Array<{ method: 'GET' | 'POST'; path: string }> {
  const get = (path: string) => ({ method: 'GET' as const, path: `${CONSOLE}${path}` });
  const post = (path: string) => ({ method: 'POST' as const, path: `${CONSOLE}${path}` });
  return [
    get(''),
    get('/'),
    get('/index.html'),
    get('/assets/console.css'),
    get('/assets/console.js'),
    get('/assets/missing.js'),
    get('/api/session'),
    get('/api/queues'),
    get('/api/queues?figures=0'),
    get(`/api/queues/${queue}/tasks`),
    get(`/api/tasks?queue=${queue}&status=queued`),
    get(`/api/tasks/${taskId}`),
    get('/api/iterations'),
    get(`/api/iterations/${iterationId}`),
    get('/api/unknown'),
    get('/elsewhere'),
    post(`/api/tasks/${taskId}/rerun`),
    post(`/api/tasks/${taskId}/cancel`),
    post(`/api/queues/${queue}/pause`),
    post(`/api/queues/${queue}/resume`),
    post(`/api/queues/${queue}/purge`),
  ];
}
