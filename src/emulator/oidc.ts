// OIDC tokens for HTTP targets: RS256 JWTs shaped like Google-signed ID tokens for a service account,
// signed with a key pair generated when the emulator starts. Handlers verify them against the
// emulator's JWKS (or PEM map) instead of Google's.
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type JsonWebKey, type KeyObject } from 'node:crypto';

export const GOOGLE_ISSUER = 'https://accounts.google.com';
const TOKEN_LIFETIME_SECONDS = 3600;

/** A public RSA key in JWK form, as Google's https://www.googleapis.com/oauth2/v3/certs lists them. */
export interface Jwk extends JsonWebKey {
  kty: 'RSA';
  n: string;
  e: string;
  alg: 'RS256';
  use: 'sig';
  kid: string;
}

export interface Jwks {
  keys: Jwk[];
}

/** Claims of the ID tokens the emulator signs. */
export interface IdTokenClaims {
  iss: string;
  aud: string;
  azp: string;
  sub: string;
  email: string;
  email_verified: true;
  iat: number;
  exp: number;
}

/** How long a signed token is reused for the same account and audience (its lifetime is an hour). */
const TOKEN_REUSE_SECONDS = 300;

const base64url = (value: Buffer | string): string => Buffer.from(value).toString('base64url');

/** A stable, Google-looking numeric unique id for a service account email. */
export function serviceAccountUniqueId(email: string): string {
  const digest = createHash('sha256').update(email).digest();
  const value = BigInt(`0x${digest.subarray(0, 10).toString('hex')}`) % 10n ** 20n;
  return `1${value.toString().padStart(20, '0')}`;
}

/** The account App Engine dispatches are signed for: App Engine's default service account. */
export function appEngineServiceAccountEmail(project: string): string {
  return `${project}@appspot.gserviceaccount.com`;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Jwk;
  pem: string;
}

function newSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(20).toString('hex');
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    kid,
    privateKey,
    jwk: { kty: 'RSA', n: jwk.n!, e: jwk.e!, alg: 'RS256', use: 'sig', kid },
    pem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export class OidcSigner {
  private current = newSigningKey();
  /** The key before the last rotation stays published, as Google keeps an old key listed for a while. */
  private previous: SigningKey | undefined;
  /** (account, audience) -> a token still well inside its lifetime; see sign(). */
  private readonly recent = new Map<string, { token: string; iat: number }>();

  get kid(): string {
    return this.current.kid;
  }

  get jwks(): Jwks {
    return { keys: [this.current.jwk, ...(this.previous ? [this.previous.jwk] : [])] };
  }

  /** kid -> SPKI public key PEM, the shape google-auth-library's verifySignedJwtWithCertsAsync takes. */
  get pemCerts(): Record<string, string> {
    return { [this.current.kid]: this.current.pem, ...(this.previous ? { [this.previous.kid]: this.previous.pem } : {}) };
  }

  /** Signs with a new key from now on (new kid); handlers must refetch the key set to accept it. */
  rotate(): void {
    this.previous = this.current;
    this.current = newSigningKey();
    this.recent.clear();
  }

  /**
   * An ID token for `serviceAccountEmail` with audience `audience`, issued at `nowMs` or up to
   * TOKEN_REUSE_SECONDS before: like Google's token service, a token is reused while it is fresh,
   * which also keeps RSA signing (about 1 ms) off every dispatch.
   */
  sign(serviceAccountEmail: string, audience: string, nowMs: number): string {
    const now = Math.floor(nowMs / 1000);
    const cacheKey = `${serviceAccountEmail}\n${audience}`;
    const cached = this.recent.get(cacheKey);
    if (cached && cached.iat <= now && now - cached.iat < TOKEN_REUSE_SECONDS) return cached.token;
    const token = this.signNew(serviceAccountEmail, audience, now);
    if (this.recent.size > 1000) this.recent.clear();
    this.recent.set(cacheKey, { token, iat: now });
    return token;
  }

  private signNew(serviceAccountEmail: string, audience: string, iat: number): string {
    const uniqueId = serviceAccountUniqueId(serviceAccountEmail);
    const claims: IdTokenClaims = {
      iss: GOOGLE_ISSUER,
      aud: audience,
      azp: uniqueId,
      sub: uniqueId,
      email: serviceAccountEmail,
      email_verified: true,
      iat,
      exp: iat + TOKEN_LIFETIME_SECONDS,
    };
    const key = this.current;
    const header = { alg: 'RS256', kid: key.kid, typ: 'JWT' };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), key.privateKey);
    return `${signingInput}.${base64url(signature)}`;
  }
}
