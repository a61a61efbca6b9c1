// Document locks for read-write transactions. Locks are exclusive, so read-modify-write
// transactions on one document queue up (oldest first) instead of all failing at commit. A wait
// that would close a cycle (T1 holds A and wants B, T2 holds B and wants A) is a deadlock: the
// youngest transaction in the cycle is aborted, so its client retries it. A retry keeps its first
// attempt's age, so a transaction that keeps losing eventually is the oldest and wins.
import { aborted } from './errors.js';

/** What the lock manager needs to know of a transaction. */
export interface LockOwner {
  /** Lower is older: waiters are served oldest first, and deadlocks abort the youngest. */
  readonly priority: number;
  isActive(): boolean;
  /** Milliseconds since the owner last did anything (idle holders can be taken over). */
  idleMs(): number;
}

interface Waiter {
  readonly owner: LockOwner;
  readonly grant: () => void;
  readonly fail: (error: Error) => void;
}

export interface LockOptions {
  /** How long a younger transaction waits for an older one before it gives up with ABORTED. */
  readonly waitTimeoutMs: number;
  /** A holder idle for this long is aborted when someone needs its lock. */
  readonly idleTimeoutMs: number;
  /** Called to abort a deadlock victim or an idle holder; it must then call releaseAll. */
  readonly abortOwner: (owner: LockOwner) => void;
}

export class LockManager {
  private readonly holders = new Map<string, LockOwner>();
  private readonly held = new Map<LockOwner, Set<string>>();
  private readonly queues = new Map<string, Waiter[]>();

  constructor(private readonly options: LockOptions) {}

  /** Resolves once `owner` holds the lock on `name`; rejects with ABORTED if it is aborted meanwhile. */
  acquire(owner: LockOwner, name: string): Promise<void> {
    const holder = this.holders.get(name);
    if (!holder || holder === owner) {
      this.grant(owner, name);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.removeWaiter(name, waiter);
        reject(aborted());
      }, this.options.waitTimeoutMs);
      const waiter: Waiter = {
        owner,
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.enqueue(name, waiter);
      // Aborting a transaction releases its locks (they go to the oldest waiter) and fails its waits.
      if (holder.idleMs() >= this.options.idleTimeoutMs) this.options.abortOwner(holder);
      else {
        const cycle = this.cycleThrough(owner);
        const youngest = cycle?.reduce((young, other) => (other.priority > young.priority ? other : young));
        if (youngest) this.options.abortOwner(youngest);
      }
    });
  }

  /** Frees every lock of `owner` (commit, rollback or abort) and fails its pending waits. */
  releaseAll(owner: LockOwner): void {
    for (const [name, queue] of this.queues) {
      const mine = queue.filter((waiter) => waiter.owner === owner);
      for (const waiter of mine) {
        this.removeWaiter(name, waiter);
        waiter.fail(aborted());
      }
    }
    const names = this.held.get(owner);
    this.held.delete(owner);
    for (const name of names ?? []) {
      this.holders.delete(name);
      this.grantToNextWaiter(name);
    }
  }

  /** Fails every wait and forgets every lock (emulator reset or shutdown). */
  clear(): void {
    for (const queue of this.queues.values()) for (const waiter of queue) waiter.fail(aborted());
    this.queues.clear();
    this.holders.clear();
    this.held.clear();
  }

  private grant(owner: LockOwner, name: string): void {
    this.holders.set(name, owner);
    let names = this.held.get(owner);
    if (!names) this.held.set(owner, (names = new Set()));
    names.add(name);
  }

  private enqueue(name: string, waiter: Waiter): void {
    const queue = this.queues.get(name) ?? [];
    queue.push(waiter);
    queue.sort((a, b) => a.owner.priority - b.owner.priority);
    this.queues.set(name, queue);
  }

  private removeWaiter(name: string, waiter: Waiter): void {
    const queue = this.queues.get(name);
    if (!queue) return;
    const index = queue.indexOf(waiter);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) this.queues.delete(name);
  }

  private grantToNextWaiter(name: string): void {
    const queue = this.queues.get(name);
    while (queue && queue.length > 0) {
      const next = queue.shift()!;
      if (!next.owner.isActive()) {
        next.fail(aborted());
        continue;
      }
      if (queue.length === 0) this.queues.delete(name);
      this.grant(next.owner, name);
      next.grant();
      return;
    }
    this.queues.delete(name);
  }

  /** The transactions in a waits-for cycle through `start`, if its newest wait closed one. */
  private cycleThrough(start: LockOwner): LockOwner[] | undefined {
    const path: LockOwner[] = [];
    const visited = new Set<LockOwner>();
    const visit = (owner: LockOwner): boolean => {
      path.push(owner);
      visited.add(owner);
      for (const next of this.holdersAwaitedBy(owner)) {
        if (next === start || (!visited.has(next) && visit(next))) return true;
      }
      path.pop();
      return false;
    };
    return visit(start) ? path : undefined;
  }

  private holdersAwaitedBy(owner: LockOwner): LockOwner[] {
    const awaited: LockOwner[] = [];
    for (const [name, queue] of this.queues) {
      const holder = this.holders.get(name);
      if (holder && queue.some((waiter) => waiter.owner === owner)) awaited.push(holder);
    }
    return awaited;
  }
}
