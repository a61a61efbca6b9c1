/**
 * What an operator's tool (the console, a CLI, a script) may ask of a configured Deferred: look,
 * cancel, rerun, pause. The console depends on this interface rather than on src/deferred.ts, so
 * that no import cycle runs between them; Deferred implements it.
 */
import type { TaskCounters } from './counters.js';
import type { TaskInfo } from './engine.js';
import type { IterationRecord } from './iteration.js';
import type { Logger } from './logger.js';
import type { TaskRecord } from './records.js';
import type { Stores, TaskPage, TaskQuery } from './stores.js';
import type { QueueInfo, QueuedTaskInfo, QueueTransport } from './transport.js';

export interface DeferredAdmin {
  readonly logger: Logger;
  /** How the instance runs: the embedded emulator, an external emulator, Cloud Tasks, or a custom transport. */
  readonly mode: 'embedded' | 'emulator' | 'cloud' | 'custom';
  readonly stores: Stores;
  /** Per-minute counters of settled attempts, when the stores keep them (the console's charts). */
  readonly counters: TaskCounters | undefined;
  /** The started transport, for RunTask and reading a task's schedule. */
  ready(): Promise<{ transport: QueueTransport }>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  findTask(query: { reference: string }): Promise<TaskRecord | undefined>;
  listTasks(query?: TaskQuery): Promise<TaskPage>;
  cancel(id: string): Promise<TaskRecord | undefined>;
  rerun(id: string): Promise<TaskInfo>;
  listQueues(): Promise<QueueInfo[]>;
  queuedTasks(queue: string): Promise<QueuedTaskInfo[]>;
  pauseQueue(queue: string): Promise<void>;
  resumeQueue(queue: string): Promise<void>;
  purgeQueue(queue: string): Promise<{ marked: number }>;
  getIteration(id: string): Promise<IterationRecord | undefined>;
  listIterations(query?: { cursor?: string; limit?: number }): Promise<{ records: IterationRecord[]; nextCursor?: string }>;
  cancelIteration(id: string): Promise<{ cancelledTasks: number }>;
  skipIterationItem(id: string, shardIndex: number): Promise<{ skippedKey: string; taskId: string }>;
  iterationItemTotal(id: string): Promise<number | undefined>;
}
