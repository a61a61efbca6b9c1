/**
 * deferIteration's bookkeeping: cloudDeferIterations/{id} holds the IterationRecord's fields,
 * `expireAt` for TTL, and `shards`, a map from shard index ("0", "1", ...) to that shard's
 * { processed, errors, done, startedAt?, finishedAt?, lastError? }.
 *
 * Shard progress is a server-side increment (no read, so shards writing at once never conflict);
 * startIteration and completeShard are compare-and-set writes (lastUpdateTime precondition), so
 * exactly one caller marks a shard done and the count it reports includes every earlier mark.
 */
import type { DocumentData, DocumentSnapshot, FieldPath } from '@google-cloud/firestore';
import type { IterationRecord, IterationStatus, IterationStore, ShardProgress, ShardProgressUpdate } from '../../src/core/iteration.js';
import { withoutUndefined } from './codec.js';
import { checkDocId } from './collections.js';
import { unchangedSince, type AdapterContext } from './context.js';
import { GRPC, grpcCode } from './errors.js';
import { newestFirstPage } from './listing.js';

type ShardFields = Omit<ShardProgress, 'index'>;

function toDocument(ctx: AdapterContext, record: IterationRecord): DocumentData {
  const { shards, ...fields } = withoutUndefined(record);
  return { ...fields, shards: shardMap(shards), expireAt: ctx.expireAt(record.expiresAt) };
}

function shardMap(shards: readonly ShardProgress[]): Record<string, ShardFields> {
  return Object.fromEntries(shards.map(({ index, ...fields }) => [String(index), fields]));
}

function toRecord(data: DocumentData): IterationRecord {
  const { expireAt: _expireAt, shards, ...fields } = data;
  const list = Object.entries((shards ?? {}) as Record<string, ShardFields>)
    .map(([index, shard]) => ({ index: Number(index), ...shard }))
    .sort((a, b) => a.index - b.index);
  return { ...(fields as Omit<IterationRecord, 'shards'>), shards: list };
}

/** A missing iteration (deleted after finalize, or never made) is not an error for these writes. */
async function ignoringMissing(work: () => Promise<unknown>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (grpcCode(error) !== GRPC.NOT_FOUND) throw error;
  }
}

export class FirestoreIterationStore implements IterationStore {
  constructor(private readonly ctx: AdapterContext) {}

  private ref(id: string) {
    return this.ctx.collection(this.ctx.names.iterations).doc(checkDocId(id, 'Iteration id'));
  }

  private shardField(index: number, field: keyof ShardFields): FieldPath {
    return new this.ctx.library.FieldPath('shards', String(index), field);
  }

  private live(snapshot: DocumentSnapshot): IterationRecord | undefined {
    return this.ctx.isLive(snapshot) ? toRecord(snapshot.data()!) : undefined;
  }

  async createIteration(record: IterationRecord): Promise<void> {
    try {
      await this.ctx.guard('create an iteration record', () => this.ref(record.id).create(toDocument(this.ctx, record)));
    } catch (error) {
      // Only the start task creates it, under the execution guard: it exists from an earlier try.
      if (grpcCode(error) !== GRPC.ALREADY_EXISTS) throw error;
    }
  }

  async getIteration(id: string): Promise<IterationRecord | undefined> {
    return this.ctx.guard('read an iteration record', async () => this.live(await this.ref(id).get()));
  }

  listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationRecord[]; nextCursor?: string }> {
    return this.ctx.guard('list iterations', () =>
      newestFirstPage(this.ctx, this.ctx.collection(this.ctx.names.iterations), query, (snapshot) => this.live(snapshot)),
    );
  }

  startIteration(id: string, shardCount: number, now: number): Promise<void> {
    const ref = this.ref(id);
    return this.ctx.compareAndSet('start an iteration', () => ref.get(), (snapshot) => {
      if (this.live(snapshot)?.status !== 'splitting') return { value: undefined };
      const shards = Array.from({ length: shardCount }, (_, index) => ({ index, processed: 0, errors: 0, done: false }));
      return {
        value: undefined,
        write: (batch) => batch.update(ref, { shardCount, shards: shardMap(shards), status: 'running', updatedAt: now }, unchangedSince(snapshot)),
      };
    });
  }

  async recordShardProgress(id: string, shardIndex: number, update: ShardProgressUpdate): Promise<void> {
    const { FieldValue } = this.ctx.library;
    const fields: unknown[] = [
      this.shardField(shardIndex, 'errors'),
      FieldValue.increment(update.errorsDelta),
      // The earliest progress time is when the shard started: minimum() keeps the first.
      this.shardField(shardIndex, 'startedAt'),
      FieldValue.minimum(update.now),
      ...(update.lastError ? [this.shardField(shardIndex, 'lastError'), withoutUndefined(update.lastError)] : []),
    ];
    await this.ctx.guard('record shard progress', () =>
      ignoringMissing(() => this.ref(id).update(this.shardField(shardIndex, 'processed'), FieldValue.increment(update.processedDelta), ...fields)),
    );
  }

  completeShard(id: string, shardIndex: number, now: number): Promise<{ allDone: boolean; shardsDone: number }> {
    const ref = this.ref(id);
    return this.ctx.compareAndSet('complete an iteration shard', () => ref.get(), (snapshot) => {
      const record = this.live(snapshot);
      if (!record) return { value: { allDone: false, shardsDone: 0 } };
      const shard = record.shards.find((s) => s.index === shardIndex);
      const marks = shard !== undefined && !shard.done;
      const shardsDone = record.shards.filter((s) => s.done).length + (marks ? 1 : 0);
      const value = { allDone: shardsDone === record.shardCount, shardsDone };
      if (!marks) return { value };
      return {
        value,
        write: (batch) =>
          batch.update(
            ref,
            this.shardField(shardIndex, 'done'),
            true,
            this.shardField(shardIndex, 'finishedAt'),
            now,
            'updatedAt',
            now,
            unchangedSince(snapshot),
          ),
      };
    });
  }

  async finishIteration(id: string, status: Extract<IterationStatus, 'finalizing' | 'succeeded' | 'failed'>, now: number): Promise<void> {
    await this.ctx.guard('finish an iteration', () =>
      ignoringMissing(() => this.ref(id).update({ status, updatedAt: now, ...(status === 'finalizing' ? {} : { finishedAt: now }) })),
    );
  }

  async deleteIteration(id: string): Promise<void> {
    await this.ctx.guard('delete an iteration', () => this.ref(id).delete());
  }
}
