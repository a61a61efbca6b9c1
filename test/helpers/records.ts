/** A queued task record for store tests: every required field, overridable. */
import { randomUUID } from 'node:crypto';
import type { TaskRecord } from '../../src/core/records.js';
import type { Stores } from '../../src/core/stores.js';

export const HOUR = 3_600_000;

/**
 * `taskName` labels the suite that made it; the id comes from the store when it picks ids (Redis
 * puts a task in its reference's hash slot), else a random UUID. Times default to now.
 */
export function sampleRecord(taskName: string, fields: Partial<TaskRecord> = {}, stores?: Stores): TaskRecord {
  const now = fields.createdAt ?? Date.now();
  return {
    id: stores?.state.newTaskId?.(fields.reference) ?? randomUUID(),
    taskName,
    queue: 'default',
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    eta: now,
    attempts: 0,
    executionCount: 0,
    payloadSize: 1,
    history: [],
    version: 1,
    expiresAt: now + HOUR,
    ...fields,
  };
}
