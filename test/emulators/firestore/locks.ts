// Document locks for read-write transactions, resolved by wound-wait: a transaction that asks for
// a lock held by an older one waits for it; one that is older than the holder "wounds" it (the
// holder is aborted and its locks pass on). Waiting only ever goes from younger to older, so there
// are no deadlocks. Locks are exclusive, so read-modify-write transactions on one document queue
// up behind each other instead of all failing at commit.
import { aborted } from './errors.js';

/** What the lock manager needs to know of a transaction. */
export interface LockOwner {
  /** Lower is older. A retried transaction keeps its first attempt's priority. */
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
  /** Called to abort a holder that was wounded or expired; it must then call releaseAll. */
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
        fail: error => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.enqueue(name, waiter);
      const wounds = owner.priority < holder.priority || holder.idleMs() >= this.options.idleTimeoutMs;
      // Aborting the holder releases its locks, which go to the oldest waiter.
      if (wounds) this.options.abortOwner(holder);
    });
  }

  /** Frees every lock of `owner` (commit, rollback or abort) and fails its pending waits. */
  releaseAll(owner: LockOwner, waitError: Error = aborted()): void {
    for (const [name, queue] of this.queues) {
      const mine = queue.filter(waiter => waiter.owner === owner);
      for (const waiter of mine) {
        this.removeWaiter(name, waiter);
        waiter.fail(waitError);
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
}
