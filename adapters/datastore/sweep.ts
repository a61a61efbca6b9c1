/**
 * Retention without a TTL: Datastore keeps entities until deleted, so sweepExpired removes what
 * has expired in bounded batches. Records go in transactions that re-check the expiry and free
 * the reference only if it still names the record (a new holder may have taken it since);
 * payloads and iterations, whose ids are never reused, are deleted with all their children.
 */
import type { Key } from '@google-cloud/datastore';
import type { ReferenceHold } from '../../src/core/lifecycle.js';
import type { TaskRecord } from '../../src/core/records.js';
import { where, type AdapterContext } from './context.js';
import type { DatastoreDocuments } from './documents.js';
import { deletePayloads } from './payload-store.js';

/** Expired keys read per query, and payloads or iterations per delete. */
const BATCH = 100;
/**
 * Records per transaction. A record and its reference hold are two root entities, so two entity
 * groups; databases with OPTIMISTIC_WITH_ENTITY_GROUPS concurrency (legacy Datastore) refuse a
 * transaction over more than 25 groups ("operating on too many entity groups").
 */
export const RECORDS_PER_TRANSACTION = 12;

async function expiredKeys(ctx: AdapterContext, kind: string, limit: number): Promise<Key[]> {
  const q = where(ctx.query(kind), 'expiresAt', '<=', ctx.now()).select('__key__').order('expiresAt').limit(limit);
  return (await ctx.runQuery(q)).map((entity) => ctx.keyOf(entity));
}

async function sweepRecords(docs: DatastoreDocuments, keys: readonly Key[]): Promise<number> {
  const { ctx } = docs;
  const tx = ctx.datastore.transaction();
  try {
    await tx.run();
    const found = await ctx.read(tx, keys);
    const expired = keys.filter((_, i) => found[i] !== undefined && !docs.decode(found[i]));
    const records = found.flatMap((entity) => (entity && !docs.decode(entity) ? [JSON.parse(String(entity.value)) as TaskRecord] : []));
    const ids = new Set(records.map((record) => record.id));
    const references = new Set(records.flatMap((record) => (record.reference === undefined ? [] : [record.reference])));
    const refKeys = [...references].map((id) => docs.key({ kind: 'ref', id }));
    const holds = await ctx.read(tx, refKeys);
    const freed = refKeys.filter((_, i) => ids.has(String((JSON.parse(String(holds[i]?.value ?? '{}')) as Partial<ReferenceHold>).taskId)));
    tx.delete([...expired, ...freed]);
    await tx.commit();
    return ids.size;
  } catch (error) {
    void tx.rollback().catch(() => undefined);
    throw error;
  }
}

/** Remove iterations and all their shard entities. */
async function deleteIterations(ctx: AdapterContext, ids: string[]): Promise<void> {
  const keys = await Promise.all(
    ids.map(async (id) => {
      const parent = ctx.key(ctx.kinds.iteration, id);
      const shards = await ctx.runQuery(ctx.query(ctx.kinds.iterationShard).hasAncestor(parent).select('__key__'));
      return [parent, ...shards.map((shard) => ctx.keyOf(shard))];
    }),
  );
  if (keys.length > 0) await ctx.datastore.delete(keys.flat());
}

/** Remove up to `limit` expired records, payloads and iterations (in that order); returns how many. */
export async function sweepExpired(docs: DatastoreDocuments, limit: number): Promise<number> {
  const { ctx } = docs;
  let removed = 0;
  const left = (): number => Math.min(BATCH, limit - removed);
  const sweepKind = async (kind: string, remove: (keys: Key[]) => Promise<number>): Promise<void> => {
    while (left() > 0) {
      const keys = await expiredKeys(ctx, kind, left());
      if (keys.length > 0) removed += await remove(keys);
      if (keys.length < BATCH) return;
    }
  };
  const names = (keys: Key[]): string[] => keys.map((key) => key.name!);
  await sweepKind(ctx.kinds.task, async (keys) => {
    let swept = 0;
    for (let i = 0; i < keys.length; i += RECORDS_PER_TRANSACTION) swept += await sweepRecords(docs, keys.slice(i, i + RECORDS_PER_TRANSACTION));
    return swept;
  });
  const deleting = (remove: (ctx: AdapterContext, ids: string[]) => Promise<void>) => async (keys: Key[]) => {
    await remove(ctx, names(keys));
    return keys.length;
  };
  await sweepKind(ctx.kinds.payload, deleting(deletePayloads));
  await sweepKind(ctx.kinds.iteration, deleting(deleteIterations));
  return removed;
}
