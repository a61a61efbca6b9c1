// A small HTTP server publishing the emulator's signing key the way Google publishes its own:
// JWKS at /oauth2/v3/certs, a kid -> PEM map at /oauth2/v1/certs, and an OpenID discovery document.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GOOGLE_ISSUER, type OidcSigner } from './oidc.js';

export const JWKS_PATH = '/oauth2/v3/certs';
export const PEM_CERTS_PATH = '/oauth2/v1/certs';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';

export interface JwksServer {
  baseUrl: string;
  close(): Promise<void>;
}

/** Listens on `host`; URLs are given with `dialHost` (loopback when `host` is a wildcard). */
export async function startJwksServer(signer: OidcSigner, host: string, dialHost: string): Promise<JwksServer> {
  let baseUrl = '';
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    let body: unknown;
    if (path === JWKS_PATH) body = signer.jwks;
    else if (path === PEM_CERTS_PATH) body = signer.pemCerts;
    else if (path === DISCOVERY_PATH) {
      body = {
        issuer: GOOGLE_ISSUER,
        jwks_uri: `${baseUrl}${JWKS_PATH}`,
        id_token_signing_alg_values_supported: ['RS256'],
        subject_types_supported: ['public'],
        response_types_supported: ['id_token'],
        claims_supported: ['aud', 'azp', 'email', 'email_verified', 'exp', 'iat', 'iss', 'sub'],
      };
    }
    if (body === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=300' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://${dialHost.includes(':') ? `[${dialHost}]` : dialHost}:${port}`;
  return {
    baseUrl,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
