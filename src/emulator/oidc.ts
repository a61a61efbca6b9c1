// OIDC tokens for HTTP targets: RS256 JWTs shaped like Google-signed ID tokens for a service account,
// signed with a key pair generated when the emulator starts. Handlers verify them against the
// emulator's JWKS (or PEM map) instead of Google's.
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';

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

export class OidcSigner {
  readonly kid: string;
  readonly jwks: Jwks;
  /** kid -> SPKI public key PEM, the shape google-auth-library's verifySignedJwtWithCertsAsync takes. */
  readonly pemCerts: Record<string, string>;
  private readonly privateKey: KeyObject;
  /** (account, audience) -> a token still well inside its lifetime; see sign(). */
  private readonly recent = new Map<string, { token: string; iat: number }>();

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.kid = randomBytes(20).toString('hex');
    const jwk = publicKey.export({ format: 'jwk' });
    this.jwks = { keys: [{ kty: 'RSA', n: jwk.n!, e: jwk.e!, alg: 'RS256', use: 'sig', kid: this.kid }] };
    this.pemCerts = { [this.kid]: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
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
    const header = { alg: 'RS256', kid: this.kid, typ: 'JWT' };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), this.privateKey);
    return `${signingInput}.${base64url(signature)}`;
  }
}
