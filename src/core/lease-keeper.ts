/**
 * The runs under way in this process: a second delivery of a task already running here never
 * starts a second run (it is answered without asking the store), and each run gets an
 * AbortSignal that fires at its deadline (the dispatch deadline bound), when the engine shuts
 * down, or when a heartbeat finds its lease taken over.
 *
 * Heartbeat: with a store that can renew a held lease, a run takes a short lease and renews it
 * every third of its length, never past the run's deadline. A killed process stops renewing, so
 * its task is free again within one short lease instead of the whole dispatch deadline.
 */

/** How a run keeps its short lease alive. */
export interface Heartbeat {
  /** The short lease, ms; renewed every third of it. */
  leaseMs: number;
  /** Renew for `leaseMs` from now: 'held', 'lost' (taken over or settled elsewhere), or 'unknown' (store unreachable). */
  renew(leaseMs: number): Promise<'held' | 'lost' | 'unknown'>;
}

export interface RunHandle {
  readonly taskId: string;
  readonly owner: string;
  readonly signal: AbortSignal;
}

/**
 * One run. Its AbortController and deadline timer are made only when someone asks for the signal
 * (most tasks never do, and each costs microseconds per delivery); an abort that comes first is
 * kept and applied to the signal when it is made.
 */
class Entry implements RunHandle {
  private controller?: AbortController;
  private timer?: ReturnType<typeof setTimeout>;
  private abortedWith?: DOMException;
  beat?: ReturnType<typeof setTimeout>;
  ended = false;

  constructor(
    readonly taskId: string,
    readonly owner: string,
    /** When the run's lease ends (Date.now() ms), if it has an end. */
    private readonly deadline: number | undefined,
  ) {}

  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    if (this.abortedWith) controller.abort(this.abortedWith);
    else if (this.deadline !== undefined && !this.ended) {
      const left = this.deadline - Date.now();
      if (left <= 0) this.abortAtDeadline();
      else {
        this.timer = setTimeout(() => this.abortAtDeadline(), left);
        // A run's deadline must not keep the process alive on its own.
        if (typeof this.timer === 'object' && 'unref' in this.timer) this.timer.unref();
      }
    }
    return controller.signal;
  }

  private abortAtDeadline(): void {
    this.abort(new DOMException('The task reached the end of its lease (its dispatch deadline)', 'TimeoutError'));
  }

  abort(reason: DOMException): void {
    if (this.abortedWith) return;
    this.abortedWith = reason;
    this.controller?.abort(reason);
  }

  finish(): void {
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.beat) clearTimeout(this.beat);
  }
}

export class RunningSet {
  private readonly runs = new Map<string, Entry>();

  get size(): number {
    return this.runs.size;
  }

  has(taskId: string): boolean {
    return this.runs.has(taskId);
  }

  /**
   * Registers a run; its signal fires at `deadline` (engine-clock ms) if the run is still going.
   * With a heartbeat, the lease (ending at `leaseUntil`) is renewed until the run ends or the deadline.
   */
  begin(taskId: string, owner: string, deadline: number | undefined, now: number, heartbeat?: { leaseUntil: number; beat: Heartbeat }): RunHandle {
    const skew = Date.now() - now;
    const entry = new Entry(taskId, owner, deadline === undefined ? undefined : deadline + skew);
    this.runs.set(taskId, entry);
    if (heartbeat) this.scheduleBeat(entry, heartbeat.beat, heartbeat.leaseUntil, deadline, skew);
    return entry;
  }

  /** `skew` turns the engine clock into Date.now() (they are the same outside tests). */
  private scheduleBeat(entry: Entry, beat: Heartbeat, leaseUntil: number, deadline: number | undefined, skew: number): void {
    const every = Math.max(50, Math.floor(beat.leaseMs / 3));
    entry.beat = setTimeout(async () => {
      if (entry.ended) return;
      const now = Date.now() - skew;
      if (deadline !== undefined && now >= deadline) return;
      const leaseMs = deadline === undefined ? beat.leaseMs : Math.min(beat.leaseMs, deadline - now);
      let answer: 'held' | 'lost' | 'unknown';
      try {
        answer = await beat.renew(leaseMs);
      } catch {
        answer = 'unknown';
      }
      if (entry.ended) return;
      if (answer === 'lost') {
        entry.abort(new DOMException('The task lease was taken over by another delivery; this run should stop', 'AbortError'));
        return;
      }
      const until = answer === 'held' ? now + leaseMs : leaseUntil;
      if (answer === 'unknown' && Date.now() - skew >= until) {
        // Not renewed before it ran out: another delivery may take the task now.
        entry.abort(new DOMException('The task lease ran out while the store was unreachable', 'AbortError'));
        return;
      }
      this.scheduleBeat(entry, beat, until, deadline, skew);
    }, every);
    if (typeof entry.beat === 'object' && 'unref' in entry.beat) entry.beat.unref();
  }

  end(taskId: string): void {
    const entry = this.runs.get(taskId);
    if (!entry) return;
    entry.finish();
    this.runs.delete(taskId);
  }

  /** Fires every run's signal (shutdown). */
  abortAll(reason: string): void {
    for (const entry of this.runs.values()) entry.abort(new DOMException(reason, 'AbortError'));
  }

  /** The runs still under way. */
  list(): RunHandle[] {
    return [...this.runs.values()];
  }
}
