/**
 * deferIteration's bookkeeping on Datastore: one <P>Iteration entity (its fields, shardsDone and
 * a listing key) and one <P>IterationShard child per shard (progress and the done marker). Shards
 * write their own entity, so they never contend with each other while they run; completeShard
 * marks the shard and counts it on the parent in one transaction, which is how exactly one shard
 * learns that it completed the last one, and why a repeated completion changes nothing.
 */
import type { Key } from '@google-cloud/datastore';
import { decodeCursor, encodeCursor } from '../../src/core/cursor.js';
import type { IterationRecord, IterationStatus, IterationStore, ShardProgress, ShardProgressUpdate } from '../../src/core/iteration.js';
import type { TaskErrorInfo } from '../../src/core/records.js';
import { commitWith, readOnly, where, type AdapterContext, type EntityData, type EntityWrite } from './context.js';
import { sortKey } from './listing-keys.js';

const MAX_LIMIT = 1000;
const ITERATION_UNINDEXED = [
  'id',
  'callbackTask',
  'finalizeTask',
  'queue',
  'shardCount',
  'shardsDone',
  'status',
  'createdAt',
  'updatedAt',
  'finishedAt',
  'deleteMarker',
];
const SHARD_UNINDEXED = ['index', 'processed', 'errors', 'done', 'startedAt', 'finishedAt', 'lastError'];

type IterationFields = Omit<IterationRecord, 'shards'> & { shardsDone: number };

export class DatastoreIterationStore implements IterationStore {
  constructor(private readonly ctx: AdapterContext) {}

  private key(id: string): Key {
    return this.ctx.key(this.ctx.kinds.iteration, id);
  }

  private shardKey(id: string, index: number): Key {
    // Numeric ids start at 1.
    return this.ctx.childKey(this.key(id), this.ctx.kinds.iterationShard, index + 1);
  }

  private write(fields: IterationFields): EntityWrite {
    const { finishedAt, ...rest } = fields;
    return {
      key: this.key(fields.id),
      data: { ...rest, ...(finishedAt !== undefined ? { finishedAt } : {}), lAll: sortKey(fields) },
      excludeFromIndexes: ITERATION_UNINDEXED,
    };
  }

  private shardWrite(id: string, shard: ShardProgress): EntityWrite {
    const { lastError, ...rest } = shard;
    return {
      key: this.shardKey(id, shard.index),
      data: { ...dropUndefined(rest), ...(lastError ? { lastError: JSON.stringify(lastError) } : {}) },
      excludeFromIndexes: SHARD_UNINDEXED,
    };
  }

  private live(entity: EntityData | undefined): IterationFields | undefined {
    if (!entity || Number(entity.expiresAt) <= this.ctx.now()) return undefined;
    return parseIteration(entity);
  }

  async createIteration(record: IterationRecord): Promise<void> {
    await this.ctx.transact('create an iteration record', async (tx) => {
      const [existing] = await this.ctx.read(tx, [this.key(record.id)]);
      if (this.live(existing)) return readOnly(undefined);
      const { shards, ...fields } = record;
      tx.upsert([this.write({ ...fields, shardsDone: 0 }), ...shards.map((shard) => this.shardWrite(record.id, shard))]);
      return commitWith(undefined);
    });
  }

  async getIteration(id: string): Promise<IterationRecord | undefined> {
    return this.ctx.guard('read an iteration record', async () => {
      const [entity] = await this.ctx.read(this.ctx.datastore, [this.key(id)]);
      const fields = this.live(entity);
      return fields && this.withShards(fields);
    });
  }

  private async withShards(fields: IterationFields): Promise<IterationRecord> {
    const keys = Array.from({ length: fields.shardCount }, (_, index) => this.shardKey(fields.id, index));
    const shards = (await this.ctx.read(this.ctx.datastore, keys)).map((entity, index) => parseShard(entity, index));
    const { shardsDone: _done, ...record } = fields;
    return { ...record, shards };
  }

  async listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationRecord[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), MAX_LIMIT);
    return this.ctx.guard('list iterations', async () => {
      const records: IterationRecord[] = [];
      let upper = query.cursor !== undefined ? sortKey(decodeCursor(query.cursor)) : undefined;
      for (;;) {
        const q = this.ctx
          .query(this.ctx.kinds.iteration)
          .order('lAll', { descending: true })
          .limit(limit + 1);
        if (upper !== undefined) where(q, 'lAll', '<', upper);
        const entities = await this.ctx.runQuery(q);
        for (const entity of entities) {
          upper = String(entity.lAll);
          const fields = this.live(entity);
          if (!fields) continue; // expired, waiting for the sweep
          if (records.length === limit) return { records, nextCursor: encodeCursor(records[limit - 1]!) };
          records.push(await this.withShards(fields));
        }
        if (entities.length <= limit) return { records };
      }
    });
  }

  async startIteration(id: string, shardCount: number, now: number): Promise<void> {
    await this.ctx.transact('start an iteration', async (tx) => {
      const [entity] = await this.ctx.read(tx, [this.key(id)]);
      const fields = this.live(entity);
      if (!fields || fields.status !== 'splitting') return readOnly(undefined);
      const shards = Array.from({ length: shardCount }, (_, index): ShardProgress => ({ index, processed: 0, errors: 0, done: false }));
      tx.upsert([this.write({ ...fields, shardCount, shardsDone: 0, status: 'running', updatedAt: now }), ...shards.map((s) => this.shardWrite(id, s))]);
      return commitWith(undefined);
    });
  }

  async recordShardProgress(id: string, shardIndex: number, update: ShardProgressUpdate): Promise<void> {
    await this.ctx.transact('record shard progress', async (tx) => {
      const [entity] = await this.ctx.read(tx, [this.shardKey(id, shardIndex)]);
      if (!entity) return readOnly(undefined);
      const shard = parseShard(entity, shardIndex);
      shard.processed += update.processedDelta;
      shard.errors += update.errorsDelta;
      shard.startedAt ??= update.now;
      if (update.lastError) shard.lastError = update.lastError;
      tx.upsert(this.shardWrite(id, shard));
      return commitWith(undefined);
    });
  }

  completeShard(id: string, shardIndex: number, now: number): Promise<{ allDone: boolean; shardsDone: number }> {
    return this.ctx.transact('complete an iteration shard', async (tx) => {
      const [entity, shardEntity] = await this.ctx.read(tx, [this.key(id), this.shardKey(id, shardIndex)]);
      const fields = this.live(entity);
      if (!fields) return readOnly({ allDone: false, shardsDone: 0 });
      const shard = shardEntity ? parseShard(shardEntity, shardIndex) : undefined;
      if (!shard || shard.done) return readOnly({ allDone: fields.shardsDone === fields.shardCount, shardsDone: fields.shardsDone });
      const shardsDone = fields.shardsDone + 1;
      tx.upsert([this.write({ ...fields, shardsDone, updatedAt: now }), this.shardWrite(id, { ...shard, done: true, finishedAt: now })]);
      return commitWith({ allDone: shardsDone === fields.shardCount, shardsDone });
    });
  }

  async finishIteration(id: string, status: Extract<IterationStatus, 'finalizing' | 'succeeded' | 'failed'>, now: number): Promise<void> {
    await this.ctx.transact('finish an iteration', async (tx) => {
      const [entity] = await this.ctx.read(tx, [this.key(id)]);
      const fields = this.live(entity);
      if (!fields) return readOnly(undefined);
      tx.upsert(this.write({ ...fields, status, updatedAt: now, ...(status !== 'finalizing' ? { finishedAt: now } : {}) }));
      return commitWith(undefined);
    });
  }

  async deleteIteration(id: string): Promise<void> {
    await this.ctx.guard('delete an iteration', () => deleteIterations(this.ctx, [id]));
  }
}

/** Remove iterations and all their shard entities. */
export async function deleteIterations(ctx: AdapterContext, ids: readonly string[]): Promise<void> {
  const keys = await Promise.all(
    ids.map(async (id) => {
      const parent = ctx.key(ctx.kinds.iteration, id);
      const shards = await ctx.runQuery(ctx.query(ctx.kinds.iterationShard).hasAncestor(parent).select('__key__'));
      return [parent, ...shards.map((shard) => ctx.keyOf(shard))];
    }),
  );
  if (keys.length > 0) await ctx.datastore.delete(keys.flat());
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function parseIteration(entity: EntityData): IterationFields {
  return {
    id: String(entity.id),
    callbackTask: String(entity.callbackTask),
    finalizeTask: String(entity.finalizeTask),
    queue: String(entity.queue),
    shardCount: Number(entity.shardCount),
    shardsDone: Number(entity.shardsDone ?? 0),
    status: entity.status as IterationStatus,
    createdAt: Number(entity.createdAt),
    updatedAt: Number(entity.updatedAt),
    ...(entity.finishedAt !== undefined && entity.finishedAt !== null ? { finishedAt: Number(entity.finishedAt) } : {}),
    deleteMarker: entity.deleteMarker === true,
    expiresAt: Number(entity.expiresAt),
  };
}

function parseShard(entity: EntityData | undefined, index: number): ShardProgress {
  if (!entity) return { index, processed: 0, errors: 0, done: false };
  return {
    index,
    processed: Number(entity.processed ?? 0),
    errors: Number(entity.errors ?? 0),
    done: entity.done === true,
    ...(typeof entity.startedAt === 'number' ? { startedAt: entity.startedAt } : {}),
    ...(typeof entity.finishedAt === 'number' ? { finishedAt: entity.finishedAt } : {}),
    ...(typeof entity.lastError === 'string' ? { lastError: JSON.parse(entity.lastError) as TaskErrorInfo } : {}),
  };
}
