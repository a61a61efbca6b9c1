import type { TaskRecord } from '../../src/core/records.js';
import type { StagedDefer } from '../../src/core/stores.js';
import { HOUR, sampleRecord } from '../helpers/records.js';

export { HOUR };

export function taskRecord(fields: Partial<TaskRecord> = {}): TaskRecord {
  return sampleRecord('firestore.task', fields);
}

/** What a transactional defer hands the hook; with a payload of `payloadBytes` when given. */
export function stagedDefer(fields: Partial<TaskRecord> = {}, payloadBytes?: number): StagedDefer {
  const record = taskRecord(fields);
  if (payloadBytes) Object.assign(record, { payloadRef: record.id, payloadSize: payloadBytes });
  return {
    record,
    outbox: {
      taskId: record.id,
      createdAt: record.createdAt,
      request: {
        queue: 'default',
        bodyBase64: Buffer.from('{"task":"t"}').toString('base64'),
        headers: {},
        target: { kind: 'appEngine', relativeUri: '/_ah/queue/deferred' },
      },
    },
    ...(payloadBytes ? { payload: { id: record.id, data: Buffer.alloc(payloadBytes, 7), ttlMs: HOUR } } : {}),
  };
}

/** JSON equality: a property holding undefined and an absent one are the same. */
export const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
