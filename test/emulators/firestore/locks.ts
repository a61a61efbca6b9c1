// Document locks, pessimistic as on Google's Firestore emulator (1.19.9, measured): a read in a
// read-write transaction takes a shared lock, so several transactions read one document at once;
// a commit takes exclusive locks on what it writes and waits for every other holder. A
// transaction's wait gives up after `waitTimeoutMs` (2 s there) with ABORTED "Transaction lock
// timeout." and the transaction is aborted, which is how a deadlock ends: there is no deadlock
// detection, the first to wait is the first to give up. A write outside any transaction waits
// without that bound, until the holders finish or are expired for being idle.
import { aborted } from './errors.js';

/** What the lock manager needs to know of a transaction. */
export interface LockOwner {
  isActive(): boolean;
  /** Milliseconds since the owner last did anything (idle holders are expired when someone waits). */
  idleMs(): number;
}

export type LockMode = 'shared' | 'exclusive';

interface Waiter {
  readonly owner: LockOwner;
  readonly mode: LockMode;
  readonly grant: () => void;
  readonly fail: (error: Error) => void;
}

export interface LockOptions {
  /** How long a transaction waits for a lock before it gives up with ABORTED. */
  readonly waitTimeoutMs: number;
  /** A holder idle for this long is aborted when someone waits for its lock. */
  readonly idleTimeoutMs: number;
  /** Called to expire an idle holder; it must then call releaseAll. */
  readonly abortOwner: (owner: LockOwner) => void;
}

/** ABORTED with Google's emulator's words for a lock wait that timed out. */
export const lockTimeout = () => aborted('Transaction lock timeout.');

/** How often a waiter looks for idle holders to expire. */
const IDLE_CHECK_MS = 1000;

export class LockManager {
  private readonly holders = new Map<string, Map<LockOwner, LockMode>>();
  private readonly held = new Map<LockOwner, Set<string>>();
  private readonly queues = new Map<string, Waiter[]>();

  constructor(private readonly options: LockOptions) {}

  /**
   * Resolves once `owner` holds `name` in `mode` (a shared lock it holds is upgraded). `bounded`:
   * give up after waitTimeoutMs (transactions); unbounded waits are for writes outside them.
   */
  acquire(owner: LockOwner, name: string, mode: LockMode, bounded: boolean): Promise<void> {
    const mine = this.holders.get(name)?.get(owner);
    if (mine === 'exclusive' || mine === mode) return Promise.resolve();
    // A holder upgrading its shared lock goes before those waiting: they wait for it anyway.
    if (this.grantable(owner, name, mode) && (mine !== undefined || !this.queues.get(name)?.length)) {
      this.grant(owner, name, mode);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const done = () => timers.forEach(clearTimeout);
      const waiter: Waiter = {
        owner,
        mode,
        grant: () => {
          done();
          resolve();
        },
        fail: (error) => {
          done();
          reject(error);
        },
      };
      if (bounded) timers.push(setTimeout(() => this.failWaiter(name, waiter, lockTimeout()), this.options.waitTimeoutMs));
      const expireIdle = () => {
        for (const holder of this.holders.get(name)?.keys() ?? []) {
          if (holder !== owner && holder.idleMs() >= this.options.idleTimeoutMs) this.options.abortOwner(holder);
        }
        if (this.queues.get(name)?.includes(waiter)) timers.push(setTimeout(expireIdle, IDLE_CHECK_MS));
      };
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, mine !== undefined ? [waiter, ...queue] : [...queue, waiter]);
      expireIdle();
    });
  }

  /** Frees every lock of `owner` (commit, rollback or abort) and fails its pending waits. */
  releaseAll(owner: LockOwner, error: () => Error = lockTimeout): void {
    for (const [name, queue] of this.queues) for (const waiter of queue.filter((w) => w.owner === owner)) this.failWaiter(name, waiter, error());
    const names = this.held.get(owner);
    this.held.delete(owner);
    for (const name of names ?? []) {
      const holders = this.holders.get(name);
      holders?.delete(owner);
      if (holders?.size === 0) this.holders.delete(name);
      this.grantWaiters(name);
    }
  }

  /** Fails every wait and forgets every lock (emulator reset or shutdown). */
  clear(error: () => Error = aborted): void {
    for (const queue of this.queues.values()) for (const waiter of queue) waiter.fail(error());
    this.queues.clear();
    this.holders.clear();
    this.held.clear();
  }

  private grantable(owner: LockOwner, name: string, mode: LockMode): boolean {
    for (const [holder, held] of this.holders.get(name) ?? []) {
      if (holder !== owner && (mode === 'exclusive' || held === 'exclusive')) return false;
    }
    return true;
  }

  private grant(owner: LockOwner, name: string, mode: LockMode): void {
    const holders = this.holders.get(name) ?? new Map<LockOwner, LockMode>();
    this.holders.set(name, holders);
    if (holders.get(owner) !== 'exclusive') holders.set(owner, mode);
    let names = this.held.get(owner);
    if (!names) this.held.set(owner, (names = new Set()));
    names.add(name);
  }

  private failWaiter(name: string, waiter: Waiter, error: Error): void {
    const queue = this.queues.get(name) ?? [];
    const index = queue.indexOf(waiter);
    if (index < 0) return;
    queue.splice(index, 1);
    if (queue.length === 0) this.queues.delete(name);
    waiter.fail(error);
    // A waiter that gave up may have been the one blocking those behind it.
    this.grantWaiters(name);
  }

  /** Grants waiters in arrival order while they fit (several shared ones at once). */
  private grantWaiters(name: string): void {
    const queue = this.queues.get(name);
    while (queue && queue.length > 0) {
      const next = queue[0]!;
      if (!next.owner.isActive()) {
        queue.shift();
        next.fail(lockTimeout());
        continue;
      }
      if (!this.grantable(next.owner, name, next.mode)) break;
      queue.shift();
      this.grant(next.owner, name, next.mode);
      next.grant();
    }
    if (queue?.length === 0) this.queues.delete(name);
  }
}
