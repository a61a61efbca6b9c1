// Cloud Tasks' rate limit: a bucket of max_burst_size tokens refilled at max_dispatches_per_second;
// each dispatch takes one token.

export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private ratePerSecond: number,
    private capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.refilledAt = now;
  }

  /** Changes the rate and size; tokens already in the bucket stay, up to the new size. */
  reconfigure(ratePerSecond: number, capacity: number, now: number): void {
    this.refill(now);
    this.ratePerSecond = ratePerSecond;
    this.capacity = capacity;
    this.tokens = Math.min(this.tokens, capacity);
  }

  tryTake(now: number): boolean {
    this.refill(now);
    // Float refills can land a hair under a whole token; treat that as a whole one.
    if (this.tokens < 1 - 1e-9) return false;
    this.tokens = Math.max(0, this.tokens - 1);
    return true;
  }

  /** Returns a token taken for a dispatch that did not happen. */
  giveBack(): void {
    this.tokens = Math.min(this.capacity, this.tokens + 1);
  }

  /** Milliseconds until a token will be available (0 if one is). */
  msUntilToken(now: number): number {
    this.refill(now);
    if (this.tokens >= 1 - 1e-9) return 0;
    if (this.ratePerSecond <= 0) return Number.POSITIVE_INFINITY;
    return Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond);
  }

  private refill(now: number): void {
    if (now > this.refilledAt) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.refilledAt) * this.ratePerSecond) / 1000);
    }
    this.refilledAt = Math.max(this.refilledAt, now);
  }
}
