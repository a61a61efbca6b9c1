/** How the core calls a store: errors become STORE_UNAVAILABLE, clean-ups are best effort. */
import { randomUUID } from 'node:crypto';
import { CloudDeferError, errorInfo } from './errors.js';

export { errorInfo };
import type { Logger } from './logger.js';

// randomUUID draws from a cached entropy pool: much cheaper per call than randomBytes.
export const randomId = (): string => randomUUID().replace(/-/g, '');

export class StoreCalls {
  constructor(
    private readonly storeKind: string,
    private readonly logger: Logger,
  ) {}

  /** Store errors become STORE_UNAVAILABLE unless they are already ours. Not async: one promise less per store call. */
  call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn().catch(this.unavailable);
    } catch (err) {
      return this.unavailable(err);
    }
  }

  private readonly unavailable = (err: unknown): never => {
    if (err instanceof CloudDeferError) throw err;
    throw new CloudDeferError('STORE_UNAVAILABLE', `The ${this.storeKind} state store failed: ${errorInfo(err).message}`, { cause: err });
  };

  /** A clean-up whose failure only delays it: whatever it leaves expires by itself. */
  async bestEffort(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.logger.warn('clean-up step failed (it will expire by itself)', { error: errorInfo(err).message });
    }
  }

  /** Retries `fn` with backoff while it fails with STORE_UNAVAILABLE, for up to `budgetMs`. */
  retryWhileUnavailable<T>(fn: () => Promise<T>, budgetMs: number, onFirstRetry?: () => void): Promise<T> {
    // The first attempt without an async frame: it is the one every delivery makes.
    const deadline = Date.now() + budgetMs;
    return fn().catch((err: unknown) => this.retryAfter(err, fn, deadline, onFirstRetry));
  }

  private async retryAfter<T>(first: unknown, fn: () => Promise<T>, deadline: number, onFirstRetry?: () => void): Promise<T> {
    let err = first;
    let delay = 50;
    for (let attempt = 0; ; attempt += 1) {
      const unavailable = err instanceof CloudDeferError && err.code === 'STORE_UNAVAILABLE';
      if (!unavailable || Date.now() + delay > deadline) throw err;
      if (attempt === 0) onFirstRetry?.();
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 1_000);
      try {
        return await fn();
      } catch (next) {
        err = next;
      }
    }
  }
}
