/**
 * Who may deliver tasks. OIDC mode verifies the Google-signed ID token that Cloud Tasks attaches
 * to HTTP targets (signature, issuer, audience, expiry, not-before and the service-account email),
 * against Google's keys or the emulator's, which signs every dispatch it makes, App Engine targets
 * included. App Engine mode trusts the X-AppEngine-* headers, which only real App Engine strips from
 * outside requests. Nothing is ever trusted for its peer address, forwarding headers or Host.
 */
import { isIP } from 'node:net';
import { OAuth2Client } from 'google-auth-library';
import { KeySet, type KeySetOptions, type KeySource } from './key-set.js';

export type { Jwks } from './key-set.js';

export interface OidcAuthOptions {
  mode: 'oidc';
  /** The service account(s) Cloud Tasks signs tokens for. Checking the audience alone would let any Google account in. */
  serviceAccountEmail: string | readonly string[];
  /** Accepted audience(s). Default: the handler's target URL. */
  audience?: string | readonly string[];
  /**
   * Verify against these keys instead of Google's: the emulator's JWKS, a function that fetches
   * it, or its URI (CLOUD_TASKS_EMULATOR_JWKS_URI). A function or URI is cached and refetched.
   */
  jwks?: KeySource;
  /** Cache and refetch settings for a `jwks` function or URI. */
  keySet?: KeySetOptions;
  /** Default: Google's two issuer spellings. */
  issuers?: readonly string[];
}

export interface AppEngineAuthOptions {
  mode: 'appEngine';
  /**
   * Tests only: trust X-AppEngine-* headers although GAE_ENV is not set. Anyone who can reach the
   * handler can then run tasks; refused where the environment looks like production.
   */
  dangerouslyTrustHeadersOutsideAppEngineForTests?: true;
}

/** Accept every request. Only when asked for explicitly, and refused where the environment looks like production. */
export interface NoAuthOptions {
  mode: 'none';
}

export type AuthOptions = OidcAuthOptions | AppEngineAuthOptions | NoAuthOptions;

export type HeaderBag = Record<string, string | string[] | undefined>;

export type AuthResult = { ok: true; via: 'oidc' | 'appEngine' | 'none'; principal?: string } | { ok: false; status: 401 | 403; reason: string };

export const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'] as const;

/**
 * A request header's first value. `name` is in lower case, as Node keys incoming headers: a
 * constant name is an interned string, so the lookup needs no lower-casing or hashing per call.
 */
export function header(headers: HeaderBag, name: Lowercase<string>): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const asList = (value: string | readonly string[]): string[] => (typeof value === 'string' ? [value] : [...value]);

/** The host name of a Host header value (`[::1]:3000` -> `::1`), lower-cased; undefined when malformed. */
export function hostName(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  const value = hostHeader.trim().toLowerCase();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end === -1) return undefined;
    const rest = value.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return value.slice(1, end);
  }
  const match = /^([^:]+)(?::\d{1,5})?$/.exec(value);
  return match?.[1];
}

/** A loopback literal (127.0.0.0/8, ::1) or `localhost`: the names a DNS-rebinding page cannot use. */
export function isLocalHostName(name: string | undefined): boolean {
  if (!name) return false;
  if (name === 'localhost') return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}

/** Whether a Host header names this machine (or one of `allowed`, host names or host:port). */
export function isAllowedHost(hostHeader: string | undefined, allowed: readonly string[] = []): boolean {
  const name = hostName(hostHeader);
  if (name === undefined) return false;
  if (isLocalHostName(name)) return true;
  const value = hostHeader!.trim().toLowerCase();
  // An entry with a port must match exactly; one without matches that host on any port.
  return allowed.some((entry) => {
    const wanted = entry.trim().toLowerCase();
    return wanted === value || wanted === name;
  });
}

/** Verified tokens are remembered until they expire, so a reused token costs no RSA verification. */
const VERIFIED_TOKEN_CACHE_SIZE = 1000;

interface TokenHeader {
  alg?: unknown;
  kid?: unknown;
}

function tokenHeader(token: string): TokenHeader | undefined {
  const first = token.split('.')[0] ?? '';
  try {
    const parsed: unknown = JSON.parse(Buffer.from(first, 'base64url').toString('utf8'));
    return parsed !== null && typeof parsed === 'object' ? (parsed as TokenHeader) : undefined;
  } catch {
    return undefined;
  }
}

export class TaskAuthenticator {
  private readonly client = new OAuth2Client();
  private readonly keys?: KeySet;
  private readonly verified = new Map<string, { principal: string; expiresAt: number }>();

  /** @param defaultAudience the target URL(s), used when the options name no audience. */
  constructor(
    readonly options: AuthOptions,
    private readonly defaultAudience: () => string | readonly string[] | undefined = () => undefined,
  ) {
    if (options.mode === 'oidc' && options.jwks !== undefined) this.keys = new KeySet(options.jwks, options.keySet);
  }

  /** The emulator's key set, when tokens are checked against one (tests read its fetch count). */
  get keySet(): KeySet | undefined {
    return this.keys;
  }

  async authenticate(request: { headers: HeaderBag }): Promise<AuthResult> {
    const { headers } = request;
    const options = this.options;
    if (options.mode === 'none') return { ok: true, via: 'none' };
    if (options.mode === 'appEngine') {
      if (!header(headers, 'x-appengine-taskname') || !header(headers, 'x-appengine-queuename')) {
        return { ok: false, status: 403, reason: 'missing X-AppEngine-TaskName / X-AppEngine-QueueName: not a Cloud Tasks request' };
      }
      return { ok: true, via: 'appEngine' };
    }
    const token = bearer(header(headers, 'x-serverless-authorization')) ?? bearer(header(headers, 'authorization'));
    if (!token) return { ok: false, status: 401, reason: 'no bearer token' };
    const known = this.verified.get(token);
    if (known && known.expiresAt > Date.now()) return { ok: true, via: 'oidc', principal: known.principal };
    const audience = options.audience ? asList(options.audience) : asList(this.defaultAudience() ?? []).filter((a) => a !== '');
    if (audience.length === 0) return { ok: false, status: 403, reason: 'no audience configured to check the token against' };
    const issuers = [...(options.issuers ?? GOOGLE_ISSUERS)];
    // Google signs ID tokens with RS256 and names the key; anything else is refused before any key is used.
    const jwtHeader = tokenHeader(token);
    if (jwtHeader?.alg !== 'RS256') return { ok: false, status: 403, reason: `invalid token: algorithm ${String(jwtHeader?.alg)} is not RS256` };
    if (typeof jwtHeader.kid !== 'string' || jwtHeader.kid === '') return { ok: false, status: 403, reason: 'invalid token: no key id' };
    let payload;
    try {
      const ticket = this.keys
        ? await this.client.verifySignedJwtWithCertsAsync(token, await this.keys.certsFor(jwtHeader.kid), audience, issuers)
        : await this.client.verifyIdToken({ idToken: token, audience });
      payload = ticket.getPayload();
      if (!payload) throw new Error('no payload');
      if (!issuers.includes(payload.iss)) throw new Error(`issuer ${payload.iss} not accepted`);
      // google-auth-library does not look at nbf.
      const nbf = (payload as { nbf?: unknown }).nbf;
      if (nbf !== undefined && !(Number(nbf) <= Date.now() / 1000)) throw new Error('token not valid yet (nbf is in the future)');
    } catch (err) {
      return { ok: false, status: 403, reason: `invalid token: ${err instanceof Error ? err.message : String(err)}` };
    }
    const emails = asList(options.serviceAccountEmail);
    if (!payload.email || payload.email_verified !== true || !emails.includes(payload.email)) {
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
}

function bearer(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match?.[1];
}
