/**
 * What an operator's tool (the console, a CLI, a script) may ask of a configured Deferred: look,
 * cancel, rerun, pause. The console depends on this interface rather than on src/deferred.ts, so
 * that no import cycle runs between them; Deferred implements it.
 */
import type { TaskInfo } from './engine.js';
import type { IterationRecord } from './iteration.js';
import type { Logger } from './logger.js';
import type { TaskRecord } from './records.js';
import type { TaskPage, TaskQuery } from './stores.js';
import type { QueueInfo, QueuedTaskInfo } from './transport.js';

export interface DeferredAdmin {
  readonly logger: Logger;
  /** How the instance runs: the embedded emulator, an external emulator, Cloud Tasks, or a custom transport. */
  readonly mode: 'embedded' | 'emulator' | 'cloud' | 'custom';
  getTask(id: string): Promise<TaskRecord | undefined>;
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
}
