// Fires items when they fall due: one min-heap for every scheduled task and queue wake-up, and a
// single timer armed on the clock for the earliest of them.
import type { Clock, ClockTimer } from './clock.js';
import { MinHeap, type HeapItem } from './heap.js';

export class Scheduler<T extends HeapItem> {
  private readonly heap = new MinHeap<T>();
  private timer: ClockTimer | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    /** Receives each item that fell due, earliest first; it is out of the heap by then. */
    private readonly onDue: (item: T) => void,
    /** Called after a batch of due items was handed out. */
    private readonly afterBatch: () => void = () => {},
  ) {}

  get size(): number {
    return this.heap.size;
  }

  isScheduled(item: T): boolean {
    return this.heap.has(item);
  }

  /** Schedules (or moves) `item` to fall due at `dueAt`. */
  schedule(item: T, dueAt: number): void {
    item.dueAt = dueAt;
    this.heap.update(item);
    this.arm();
  }

  cancel(item: T): void {
    // The armed timer may now be early; it finds nothing due, and re-arms.
    this.heap.remove(item);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.heap.clear();
  }

  private arm(): void {
    if (this.stopped) return;
    const next = this.heap.peek();
    if (!next) return;
    if (this.timer && this.armedFor <= next.dueAt) return;
    this.timer?.cancel();
    this.armedFor = next.dueAt;
    this.timer = this.clock.setTimer(() => this.fire(), next.dueAt - this.clock.now());
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    if (this.stopped) return;
    const now = this.clock.now();
    let fired = false;
    for (let next = this.heap.peek(); next && next.dueAt <= now; next = this.heap.peek()) {
      this.heap.pop();
      fired = true;
      this.onDue(next);
    }
    if (fired) this.afterBatch();
    this.arm();
  }
}
