/**
 * The outbox relay: a defer made inside a user's transaction stages its enqueue as an outbox
 * entry; the relay sends it after the commit, and sweepOutbox() sends the entries whose enqueue
 * never happened (the process died between commit and enqueue).
 */
import { CloudDeferError } from './errors.js';
import type { Logger } from './logger.js';
import { errorInfo, type StoreCalls } from './store-calls.js';
import type { OutboxEntry, StateStore } from './stores.js';
import type { QueueTransport } from './transport.js';

export interface OutboxRelayOptions {
  state: StateStore;
  calls: StoreCalls;
  logger: Logger;
  transport: () => Promise<QueueTransport>;
  now: () => number;
}

export class OutboxRelay {
  constructor(private readonly options: OutboxRelayOptions) {}

  /** Enqueue an outbox entry under its deterministic name and forget it; a name clash means it is already queued. */
  async enqueueEntry(entry: OutboxEntry): Promise<void> {
    const transport = await this.options.transport();
    try {
      await transport.enqueue(entry.request);
    } catch (err) {
      if (!(err instanceof CloudDeferError && err.code === 'TASK_ALREADY_EXISTS')) {
        this.options.logger.error('enqueue after commit failed; sweepOutbox() will retry it', {
          taskId: entry.taskId,
          queue: entry.request.queue,
          error: errorInfo(err),
        });
        return;
      }
    }
    await this.options.calls.bestEffort(() => this.options.state.removeOutbox(entry.taskId));
  }

  /**
   * Enqueue the outbox entries older than `graceMs` whose enqueue never happened. Deterministic
   * task names make a race with the original harmless.
   */
  async sweep(options: { graceMs?: number; limit?: number } = {}): Promise<{ enqueued: number }> {
    // listOutbox's bound is exclusive: +1 so that graceMs 0 includes entries made this millisecond.
    const cutoff = this.options.now() - (options.graceMs ?? 60_000) + 1;
    const entries = await this.options.calls.call(() => this.options.state.listOutbox(cutoff, options.limit ?? 500));
    for (const entry of entries) await this.enqueueEntry(entry);
    return { enqueued: entries.length };
  }
}
