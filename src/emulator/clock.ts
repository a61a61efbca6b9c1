// Time source for the emulator. Every timer the emulator arms goes through a Clock, so tests can
// swap the real clock for a ManualClock and make a 300 s backoff or a 1 h window pass instantly.

/** A cancellable timer armed on a {@link Clock}. */
export interface ClockTimer {
  cancel(): void;
}

/** The time source the emulator reads and arms its timers on. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` once, `delayMs` from now. */
  setTimer(callback: () => void, delayMs: number): ClockTimer;
  /**
   * Reports work a timer callback started (an HTTP dispatch being sent), so a manual clock can let
   * it get going before moving time on. Real clocks ignore it.
   */
  track?(work: Promise<unknown>): void;
}

// setTimeout fires at once for delays above 2^31-1 ms; longer waits re-arm on wake-up.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Wall-clock time and node timers (unref'd: the emulator's servers keep the process alive). */
export class RealClock implements Clock {
  now(): number {
    return Date.now();
  }

  setTimer(callback: () => void, delayMs: number): ClockTimer {
    const dueAt = Date.now() + Math.max(0, delayMs);
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const remaining = dueAt - Date.now();
      if (remaining > MAX_TIMEOUT_MS) {
        handle = setTimeout(arm, MAX_TIMEOUT_MS);
      } else {
        handle = setTimeout(callback, Math.max(0, remaining));
      }
      handle.unref();
    };
    arm();
    return { cancel: () => clearTimeout(handle) };
  }
}

interface ManualTimer {
  dueAt: number;
  order: number;
  callback: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to. `advance(ms)` fires every timer that falls due in order,
 * setting `now()` to each timer's due time as it fires, and waits for the dispatches those timers
 * start to be sent before moving on. It does not wait for targets to answer: use the emulator
 * handle's `idle()` for that.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: ManualTimer[] = [];
  private nextOrder = 0;
  private pending = new Set<Promise<unknown>>();

  constructor(startMs: number = Date.now()) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, delayMs: number): ClockTimer {
    const timer: ManualTimer = {
      dueAt: this.current + Math.max(0, delayMs),
      order: this.nextOrder++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
        this.timers = this.timers.filter((t) => t !== timer);
      },
    };
  }

  track(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  /** Moves time forward by `ms`, firing everything that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError('ManualClock.advance needs a duration >= 0');
    await this.runUntil(this.current + ms);
  }

  /** Moves time to `ms` since the epoch; forward jumps fire what falls due, backward jumps fire nothing. */
  async set(ms: number): Promise<void> {
    if (ms <= this.current) {
      this.current = ms;
      await this.settle();
      return;
    }
    await this.runUntil(ms);
  }

  /** Number of armed timers (for tests of the emulator's own timer discipline). */
  get armedTimers(): number {
    return this.timers.length;
  }

  private async runUntil(target: number): Promise<void> {
    await this.settle();
    for (;;) {
      const next = this.takeNextDue(target);
      if (!next) break;
      this.current = Math.max(this.current, next.dueAt);
      next.callback();
      await this.settle();
    }
    this.current = Math.max(this.current, target);
    await this.settle();
  }

  private takeNextDue(target: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const timer of this.timers) {
      if (timer.cancelled || timer.dueAt > target) continue;
      if (!best || timer.dueAt < best.dueAt || (timer.dueAt === best.dueAt && timer.order < best.order)) {
        best = timer;
      }
    }
    if (best) this.timers = this.timers.filter((t) => t !== best);
    return best;
  }

  // Lets promise chains and I/O callbacks run, then waits for tracked work started meanwhile.
  private async settle(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.pending.size === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.pending.size === 0) return;
      }
      await Promise.all([...this.pending]);
    }
  }
}

/** The clock option: 'real' (default) or a clock instance such as {@link ManualClock}. */
export type ClockOption = 'real' | Clock;

export function resolveClock(option: ClockOption | undefined): Clock {
  if (option === undefined || option === 'real') return new RealClock();
  return option;
}
