/**
 * Reads what the Datastore adapter wrote straight from the entities, with the client and the
 * layout documented in adapters/datastore/kinds.ts (documents as JSON in `value`), not through
 * the adapter's own code.
 */
import { createHash } from 'node:crypto';
import type { Datastore, Key } from '@google-cloud/datastore';
import type { TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry } from '../../src/core/stores.js';
import type { RawBackend } from '../contract/suite.js';

type Entity = Record<string, unknown>;

export interface RawDatastore extends RawBackend {
  /** Every entity of a kind in the namespace (keys and properties), for layout checks. */
  entities(kind: string): Promise<Array<{ key: Key; data: Entity }>>;
  /** The reference's hold ({ reference, taskId, held, uniqueUntil? }), expiry applied. */
  rawReference(reference: string): Promise<Entity | undefined>;
}

export function rawDatastore(datastore: Datastore, namespace: string | undefined, prefix = 'CloudDefer'): RawDatastore {
  const key = (...path: Array<string | number>): Key => datastore.key({ namespace, path });
  const get = async (k: Key): Promise<Entity | undefined> => {
    const [found] = (await datastore.get(k)) as [Entity | undefined];
    return found ?? undefined;
  };
  const live = (entity: Entity | undefined): Entity | undefined => (entity && Number(entity.expiresAt) > Date.now() ? entity : undefined);

  const decodeTask = (entity: Entity): TaskRecord => JSON.parse(String(entity.value)) as TaskRecord;

  const payloadHead = async (id: string) => live(await get(key(`${prefix}Payload`, id)));

  return {
    async rawTask(id) {
      const entity = live(await get(key(`${prefix}Task`, id)));
      return entity && decodeTask(entity);
    },
    async rawTaskExpiry(id) {
      const entity = live(await get(key(`${prefix}Task`, id)));
      return entity && Number(entity.expiresAt);
    },
    async rawPayload(id) {
      const head = await payloadHead(id);
      if (!head) return undefined;
      const parts = [head.data as Buffer];
      for (let i = 1; i < Number(head.chunks); i += 1) {
        const chunk = await get(key(`${prefix}Payload`, id, `${prefix}PayloadChunk`, `${String(head.generation)}:${i}`));
        if (!chunk) return undefined;
        parts.push(chunk.data as Buffer);
      }
      return new Uint8Array(Buffer.concat(parts));
    },
    async rawPayloadExpiry(id) {
      const head = await payloadHead(id);
      return head && Number(head.expiresAt);
    },
    async rawOutbox(taskId) {
      const entity = await get(key(`${prefix}Outbox`, taskId));
      return entity && (JSON.parse(String(entity.value)) as OutboxEntry);
    },
    async rawReference(reference) {
      const entity = live(await get(key(`${prefix}Reference`, createHash('sha256').update(reference, 'utf8').digest('hex'))));
      return entity && (JSON.parse(String(entity.value)) as Entity);
    },
    async entities(kind) {
      const [rows] = (await datastore.runQuery(datastore.createQuery(namespace ?? '', kind))) as [Entity[], unknown];
      return rows.map((data) => ({ key: (data as Record<symbol, Key>)[datastore.KEY]!, data }));
    },
  };
}
