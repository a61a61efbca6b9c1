/** Outbox entities: one per task whose enqueue must follow a commit; createdAt is indexed for the sweeper. */
import type { Key } from '@google-cloud/datastore';
import type { OutboxEntry } from '../../src/core/stores.js';
import type { AdapterContext, EntityData, EntityWrite } from './context.js';

export function outboxKey(ctx: AdapterContext, taskId: string): Key {
  return ctx.key(ctx.kinds.outbox, taskId);
}

export function outboxWrite(ctx: AdapterContext, entry: OutboxEntry): EntityWrite {
  return {
    key: outboxKey(ctx, entry.taskId),
    // The request is JSON: it is only ever handed back whole, and may be larger than an indexed value.
    data: { taskId: entry.taskId, createdAt: entry.createdAt, request: JSON.stringify(entry.request) },
    excludeFromIndexes: ['taskId', 'request'],
  };
}

export function parseOutbox(entity: EntityData): OutboxEntry {
  return {
    taskId: String(entity.taskId),
    createdAt: Number(entity.createdAt),
    request: JSON.parse(String(entity.request)) as OutboxEntry['request'],
  };
}
