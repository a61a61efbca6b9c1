/**
 * The runs under way in this process: a second delivery of a task already running here never
 * starts a second run (it is answered "busy" without asking the store), and each run gets an
 * AbortSignal that fires when its lease (bounded by the dispatch deadline) ends or the engine
 * shuts down.
 *
 * Renewal on a heartbeat is not here: today's StateStore has no primitive that extends a held
 * lease (acquireLease by the same owner answers `acquired` and changes nothing; transition's
 * patch cannot set leaseUntil). Until the store contract gains one, the lease covers the
 * dispatch deadline and this set stops duplicates within a process.
 */

export interface RunHandle {
  readonly taskId: string;
  readonly owner: string;
  readonly signal: AbortSignal;
}

interface Entry extends RunHandle {
  readonly controller: AbortController;
  readonly timer: ReturnType<typeof setTimeout> | undefined;
}

export class RunningSet {
  private readonly runs = new Map<string, Entry>();

  get size(): number {
    return this.runs.size;
  }

  has(taskId: string): boolean {
    return this.runs.has(taskId);
  }

  /** Registers a run; its signal fires at `leaseUntil` (epoch ms) if the run is still going. */
  begin(taskId: string, owner: string, leaseUntil: number | undefined, now: number): RunHandle {
    const controller = new AbortController();
    const timer =
      leaseUntil === undefined
        ? undefined
        : setTimeout(
            () => controller.abort(new DOMException('The task reached the end of its lease (its dispatch deadline)', 'TimeoutError')),
            Math.max(0, leaseUntil - now),
          );
    // A run's deadline must not keep the process alive on its own.
    if (timer && typeof timer === 'object' && 'unref' in timer) timer.unref();
    const entry: Entry = { taskId, owner, controller, signal: controller.signal, timer };
    this.runs.set(taskId, entry);
    return entry;
  }

  end(taskId: string): void {
    const entry = this.runs.get(taskId);
    if (!entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    this.runs.delete(taskId);
  }

  /** Fires every run's signal (shutdown). */
  abortAll(reason: string): void {
    for (const entry of this.runs.values()) entry.controller.abort(new DOMException(reason, 'AbortError'));
  }

  /** The runs still under way. */
  list(): RunHandle[] {
    return [...this.runs.values()];
  }
}
