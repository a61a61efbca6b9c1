/**
 * Who may deliver tasks. App Engine mode trusts the X-AppEngine-* headers App Engine itself sets
 * (and strips from outside requests); OIDC mode verifies the Google-signed ID token that Cloud Tasks
 * attaches to HTTP targets: signature, issuer, audience, expiry and the service-account email.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { OAuth2Client } from 'google-auth-library';

export interface OidcAuthOptions {
  mode: 'oidc';
  /** The service account(s) Cloud Tasks signs tokens for. Checking the audience alone would let any Google account in. */
  serviceAccountEmail: string | readonly string[];
  /** Accepted audience(s). Default: the handler's target URL. */
  audience?: string | readonly string[];
  /** Verify against these keys instead of Google's (the emulator's JWKS, or a function that fetches it). */
  jwks?: Jwks | (() => Promise<Jwks>);
  /** Default: Google's two issuer spellings. */
  issuers?: readonly string[];
}

export interface AppEngineAuthOptions {
  mode: 'appEngine';
}

/** Accept every request. Refused in production; for tests behind another gate only. */
export interface NoAuthOptions {
  mode: 'none';
}

export type AuthOptions = OidcAuthOptions | AppEngineAuthOptions | NoAuthOptions;

export interface Jwks {
  keys: Array<JsonWebKey & { kid?: string }>;
}

export type HeaderBag = Record<string, string | string[] | undefined>;

export type AuthResult =
  | { ok: true; via: 'oidc' | 'appEngine' | 'none'; principal?: string }
  | { ok: false; status: 401 | 403; reason: string };

export const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'] as const;

export function header(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

const asList = (value: string | readonly string[]): string[] => (typeof value === 'string' ? [value] : [...value]);

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Verified tokens are remembered until they expire, so a reused token costs no RSA verification. */
const VERIFIED_TOKEN_CACHE_SIZE = 1000;

export class TaskAuthenticator {
  private readonly client = new OAuth2Client();
  private certs?: Promise<Record<string, string>>;
  private readonly verified = new Map<string, { principal: string; expiresAt: number }>();

  /**
   * @param defaultAudience the target URL, used when the options name no audience.
   * @param allowLoopbackAppEngine the embedded emulator's App Engine dispatches carry no token:
   *   accept them from loopback only, as App Engine accepts task requests only from itself.
   */
  constructor(
    readonly options: AuthOptions,
    private readonly defaultAudience: () => string | undefined = () => undefined,
    private readonly allowLoopbackAppEngine = false,
  ) {}

  async authenticate(request: { headers: HeaderBag; remoteAddress?: string }): Promise<AuthResult> {
    const { headers } = request;
    const options = this.options;
    if (options.mode === 'none') return { ok: true, via: 'none' };
    if (options.mode === 'appEngine' || (this.allowLoopbackAppEngine && header(headers, 'x-appengine-taskname'))) {
      if (options.mode !== 'appEngine' && !isLoopback(request.remoteAddress)) {
        return { ok: false, status: 403, reason: 'App Engine task headers are only accepted from the local emulator' };
      }
      if (!header(headers, 'x-appengine-taskname') || !header(headers, 'x-appengine-queuename')) {
        return { ok: false, status: 403, reason: 'missing X-AppEngine-TaskName / X-AppEngine-QueueName: not a Cloud Tasks request' };
      }
      return { ok: true, via: 'appEngine' };
    }
    const token = bearer(header(headers, 'x-serverless-authorization')) ?? bearer(header(headers, 'authorization'));
    if (!token) return { ok: false, status: 401, reason: 'no bearer token' };
    const known = this.verified.get(token);
    if (known && known.expiresAt > Date.now()) return { ok: true, via: 'oidc', principal: known.principal };
    const audience = options.audience ? asList(options.audience) : [this.defaultAudience()].filter((a): a is string => !!a);
    if (audience.length === 0) return { ok: false, status: 403, reason: 'no audience configured to check the token against' };
    const issuers = [...(options.issuers ?? GOOGLE_ISSUERS)];
    let payload;
    try {
      const ticket = options.jwks
        ? await this.client.verifySignedJwtWithCertsAsync(token, await this.loadCerts(options.jwks), audience, issuers)
        : await this.client.verifyIdToken({ idToken: token, audience });
      payload = ticket.getPayload();
      if (!options.jwks && payload && !issuers.includes(payload.iss)) throw new Error(`issuer ${payload.iss} not accepted`);
    } catch (err) {
      return { ok: false, status: 403, reason: `invalid token: ${err instanceof Error ? err.message : String(err)}` };
    }
    const emails = asList(options.serviceAccountEmail);
    if (!payload?.email || payload.email_verified !== true || !emails.includes(payload.email)) {
      return { ok: false, status: 403, reason: `token is not from the configured service account (${emails.join(', ')})` };
    }
    this.remember(token, payload.email, payload.exp * 1000);
    return { ok: true, via: 'oidc', principal: payload.email };
  }

  private remember(token: string, principal: string, expiresAt: number): void {
    if (this.verified.size >= VERIFIED_TOKEN_CACHE_SIZE) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(token, { principal, expiresAt });
  }

  private loadCerts(jwks: Jwks | (() => Promise<Jwks>)): Promise<Record<string, string>> {
    this.certs ??= (async () => {
      const set = typeof jwks === 'function' ? await jwks() : jwks;
      const certs: Record<string, string> = {};
      set.keys.forEach((key, i) => {
        const pem = createPublicKey({ key, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        certs[key.kid ?? String(i)] = String(pem);
      });
      return certs;
    })();
    // A failed fetch must not stick: the next request tries again.
    this.certs.catch(() => (this.certs = undefined));
    return this.certs;
  }
}

function bearer(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match?.[1];
}

/** Production means Cloud Run (K_SERVICE) or App Engine (GAE_ENV). */
export function isProduction(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.K_SERVICE || env.GAE_ENV);
}

/** Why an auth mode is unsafe in this environment, or undefined when it is fine. */
export function unsafeAuthReason(options: AuthOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!isProduction(env)) return undefined;
  if (options.mode === 'none') return 'auth mode "none" lets anyone run your tasks';
  if (options.mode === 'appEngine' && !env.GAE_ENV) {
    return 'auth mode "appEngine" trusts X-AppEngine-* headers, which only App Engine strips from outside requests; on Cloud Run use { mode: "oidc", serviceAccountEmail }';
  }
  if (options.mode === 'oidc' && options.jwks) return 'OIDC against a custom key set (the emulator\'s) is for development only';
  return undefined;
}
