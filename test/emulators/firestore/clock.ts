// Time as Firestore keeps it: microseconds since the epoch (a JS number holds them exactly until
// the year 2255), handed out monotonically so that every commit is later than every earlier read
// or commit, as update_time and read_time require.
import { invalidArgument } from './errors.js';
import type { WireTimestamp } from './wire.js';

export type Micros = number;

export class MonotonicClock {
  private lastIssued: Micros = 0;

  /** A read time: not before anything already committed or read. */
  readTime(): Micros {
    this.lastIssued = Math.max(Date.now() * 1000, this.lastIssued);
    return this.lastIssued;
  }

  /** A commit time: strictly after every time handed out so far. */
  commitTime(): Micros {
    this.lastIssued = Math.max(Date.now() * 1000, this.lastIssued + 1);
    return this.lastIssued;
  }
}

export function microsToWire(micros: Micros): WireTimestamp {
  const seconds = Math.floor(micros / 1_000_000);
  return { seconds: String(seconds), nanos: (micros - seconds * 1_000_000) * 1000 };
}

export function wireToMicros(timestamp: WireTimestamp | null | undefined, what: string): Micros {
  const seconds = Number(timestamp?.seconds ?? 0);
  const nanos = timestamp?.nanos ?? 0;
  if (!Number.isFinite(seconds) || nanos < 0 || nanos > 999_999_999) throw invalidArgument(`Invalid ${what}.`);
  return seconds * 1_000_000 + Math.floor(nanos / 1000);
}
