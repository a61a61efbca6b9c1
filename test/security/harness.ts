/**
 * Shared by the security tests: an app listening on every interface (so 127.0.0.1, 127.0.0.2 and
 * ::1 all reach it), raw requests from a chosen source address, and JWTs made by hand.
 */
import { createHmac, createPublicKey, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { deferredMiddleware, type Deferred } from '../../src/index.js';
import type { TaskRecord } from '../../src/core/records.js';

export interface DualServer {
  port: number;
  /** http://127.0.0.1:port */
  origin: string;
  /** Serve this Deferred (until then every request is 404). */
  mount(deferred: Deferred): void;
  close(): Promise<void>;
}

export async function startDualServer(): Promise<DualServer> {
  let handler: express.Express | undefined;
  const server = http.createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(404).end();
  });
  server.listen(0, '::');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    mount(deferred) {
      const app = express();
      app.use(deferredMiddleware(deferred));
      handler = app;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One POST over a fresh connection, from `localAddress` when given, to `host` (127.0.0.1 or ::1). */
export function post(
  target: { host: string; port: number; path: string; localAddress?: string },
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.host,
        port: target.port,
        path: target.path,
        method: 'POST',
        agent: false,
        ...(target.localAddress ? { localAddress: target.localAddress } : {}),
        headers: { 'Content-Type': 'application/octet-stream', ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** An RSA key pair with a JWKS entry, to play Google (trusted) or an attacker (not). */
export interface TestKey {
  kid: string;
  privateKey: KeyObject;
  jwk: { kty: string; n: string; e: string; kid: string; alg: 'RS256'; use: 'sig' };
  pem: string;
}

export function newTestKey(kid: string): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    kid,
    privateKey,
    jwk: { kty: 'RSA', n: jwk.n!, e: jwk.e!, kid, alg: 'RS256', use: 'sig' },
    pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function signRs256(key: KeyObject, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const unsigned = `${b64({ typ: 'JWT', ...header })}.${b64(claims)}`;
  return `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(key).toString('base64url')}`;
}

/** alg confusion: HS256 keyed with the trusted RSA public key, which anyone can download. */
export function signHs256WithPublicKey(publicPem: string, kid: string, claims: Record<string, unknown>): string {
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', kid })}.${b64(claims)}`;
  return `${unsigned}.${createHmac('sha256', publicPem).update(unsigned).digest('base64url')}`;
}

export function unsignedToken(kid: string, claims: Record<string, unknown>): string {
  return `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims)}.`;
}

/** The genuine token with its claims replaced, signature kept. */
export function tamper(token: string, change: (claims: Record<string, unknown>) => Record<string, unknown>): string {
  const [head, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
  return `${head}.${b64(change(claims))}.${signature}`;
}

export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

export function kidOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
}

/** PEM of a JWKS entry (to key the alg-confusion HMAC with the key the handler trusts). */
export function pemOfJwk(jwk: Record<string, unknown>): string {
  return createPublicKey({ key: jwk as never, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
}

/** Every record in the store, by id: what "nothing was recorded" is checked against. */
export async function snapshot(deferred: Deferred): Promise<Map<string, TaskRecord>> {
  const out = new Map<string, TaskRecord>();
  let cursor: string | undefined;
  do {
    const page = await deferred.listTasks({ limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const record of page.records) out.set(record.id, record);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}
