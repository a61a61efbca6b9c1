/**
 * Retention without a TTL: Datastore keeps entities until deleted, so sweepExpired removes what
 * has expired in bounded batches. Records go in transactions that re-check the expiry and free
 * the reference only if it still points at the record (a new holder may have taken it since);
 * payloads and iterations, whose ids are never reused, are deleted with all their children.
 */
import type { Key } from '@google-cloud/datastore';
import { commitWith, where, type AdapterContext } from './context.js';
import { deleteIterations } from './iteration-store.js';
import { deletePayloads } from './payload-store.js';
import { liveRecord, referenceKey } from './records.js';

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

async function sweepRecords(ctx: AdapterContext, keys: readonly Key[]): Promise<number> {
  return ctx.transact('remove expired task records', async (tx) => {
    const entities = await ctx.read(tx, keys);
    const expired = entities.filter((entity) => entity !== undefined && !liveRecord(ctx, entity));
    const references = expired.map((entity) => entity!.reference).filter((ref): ref is string => typeof ref === 'string');
    const refKeys = [...new Set(references)].map((reference) => referenceKey(ctx, reference));
    const claims = await ctx.read(tx, refKeys);
    const expiredIds = new Set(expired.map((entity) => String(entity!.id)));
    claims.forEach((claim, i) => {
      if (claim && expiredIds.has(String(claim.taskId))) tx.delete(refKeys[i]!);
    });
    tx.delete(expired.map((entity) => ctx.keyOf(entity!)));
    return commitWith(expired.length);
  });
}

/** Remove up to `limit` expired records, payloads and iterations (in that order); returns how many. */
export async function sweepExpired(ctx: AdapterContext, limit: number): Promise<number> {
  let removed = 0;
  const left = (): number => Math.min(BATCH, limit - removed);
  const sweepKind = async (kind: string, remove: (keys: Key[]) => Promise<number>): Promise<void> => {
    while (left() > 0) {
      const keys = await expiredKeys(ctx, kind, left());
      if (keys.length > 0) removed += await remove(keys);
      if (keys.length < BATCH) return;
    }
  };
  await sweepKind(ctx.kinds.task, async (keys) => {
    let swept = 0;
    for (let i = 0; i < keys.length; i += RECORDS_PER_TRANSACTION) swept += await sweepRecords(ctx, keys.slice(i, i + RECORDS_PER_TRANSACTION));
    return swept;
  });
  await sweepKind(ctx.kinds.payload, async (keys) => {
    await deletePayloads(
      ctx,
      keys.map((key) => key.name!),
    );
    return keys.length;
  });
  await sweepKind(ctx.kinds.iteration, async (keys) => {
    await deleteIterations(
      ctx,
      keys.map((key) => key.name!),
    );
    return keys.length;
  });
  return removed;
}
