/**
 * The public keys a token is checked against when they are not Google's: the emulator's JWKS, given
 * as a fixed set, a function or a URI. A function or URI is cached for a while and fetched again
 * (at most once per interval) when a token names a key id the cache does not hold, so a rotated
 * key is accepted at once and forged key ids cannot make us fetch in a loop.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';

export interface Jwks {
  keys: Array<JsonWebKey & { kid?: string }>;
}

/** A fixed key set, a function that fetches one, or the http(s) URI of one. */
export type KeySource = Jwks | (() => Promise<Jwks>) | string;

export interface KeySetOptions {
  /** How long a fetched key set is used before it is fetched again. Default 5 minutes. */
  ttlMs?: number;
  /** Least time between two refetches caused by an unknown key id. Default 30 s. */
  unknownKidRefetchIntervalMs?: number;
  now?: () => number;
}

const DEFAULT_TTL_MS = 300_000;
const DEFAULT_UNKNOWN_KID_INTERVAL_MS = 30_000;
const FETCH_TIMEOUT_MS = 5_000;

/** kid -> SPKI PEM, the shape google-auth-library's verifySignedJwtWithCertsAsync takes. Keys without a kid are skipped (a token must name its key). */
export function certsOf(set: Jwks): Record<string, string> {
  if (!set || !Array.isArray(set.keys)) throw new Error('not a JWKS: no "keys" array');
  const certs: Record<string, string> = {};
  for (const key of set.keys) {
    if (typeof key?.kid !== 'string' || key.kid === '') continue;
    certs[key.kid] = String(createPublicKey({ key, format: 'jwk' }).export({ type: 'spki', format: 'pem' }));
  }
  return certs;
}

export async function fetchJwks(uri: string): Promise<Jwks> {
  const response = await fetch(uri, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
  if (!response.ok) throw new Error(`GET ${uri} answered ${response.status}`);
  return (await response.json()) as Jwks;
}

export class KeySet {
  private readonly fetchKeys: (() => Promise<Jwks>) | undefined;
  private certs: Record<string, string> | undefined;
  private fetchedAt = -Infinity;
  private lastUnknownKidRefetch = -Infinity;
  private inFlight: Promise<Record<string, string>> | undefined;
  private readonly ttlMs: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** Fetches made so far (successful or not). */
  fetches = 0;

  constructor(source: KeySource, options: KeySetOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.intervalMs = options.unknownKidRefetchIntervalMs ?? DEFAULT_UNKNOWN_KID_INTERVAL_MS;
    this.now = options.now ?? Date.now;
    if (typeof source === 'string') this.fetchKeys = () => fetchJwks(source);
    else if (typeof source === 'function') this.fetchKeys = source;
    else this.certs = certsOf(source);
  }

  /** The certificates to check a token naming `kid` against (fetched again when needed). */
  async certsFor(kid: string): Promise<Record<string, string>> {
    if (!this.fetchKeys) return this.certs!;
    const now = this.now();
    if (!this.certs || now - this.fetchedAt >= this.ttlMs) return this.refresh();
    if (Object.prototype.hasOwnProperty.call(this.certs, kid)) return this.certs;
    if (now - this.lastUnknownKidRefetch < this.intervalMs) return this.certs;
    this.lastUnknownKidRefetch = now;
    return this.refresh();
  }

  /** Fetches the key set now unless it is fixed or fresh; rejects when that fails and nothing is cached. */
  async load(): Promise<void> {
    if (!this.fetchKeys || (this.certs && this.now() - this.fetchedAt < this.ttlMs)) return;
    await this.refresh();
    if (!this.certs) throw new Error('no key set');
  }

  /** One fetch at a time; a failed fetch keeps the keys we had, and is tried again an interval later. */
  private refresh(): Promise<Record<string, string>> {
    if (!this.inFlight) {
      const pending = this.fetchOnce();
      this.inFlight = pending;
      pending.then(
        () => (this.inFlight = undefined),
        () => (this.inFlight = undefined),
      );
    }
    return this.inFlight;
  }

  private async fetchOnce(): Promise<Record<string, string>> {
    this.fetches += 1;
    try {
      const certs = certsOf(await this.fetchKeys!());
      this.certs = certs;
      this.fetchedAt = this.now();
      return certs;
    } catch (err) {
      if (!this.certs) throw err;
      this.fetchedAt = this.now() - this.ttlMs + this.intervalMs;
      return this.certs;
    }
  }
}
