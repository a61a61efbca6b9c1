/**
 * deferIteration's bookkeeping on Redis. One hash per iteration, in the slot of its own id:
 *   <prefix>:{<iteration id>}:iteration    static fields + shard:<i>:processed|errors|done|startedAt|lastError
 *   <prefix>:idx:iterations                zset, lexicographic "<createdAt>:<id>" (newest first listing)
 * completeShard and shard progress are Lua scripts (lua/completeShard.lua, lua/shardProgress.lua).
 */
import type { IterationRecord, IterationStatus, IterationStore, ShardProgress, ShardProgressUpdate } from '../../src/core/iteration.js';
import type { TaskErrorInfo } from '../../src/core/records.js';
import { decodeCursor, encodeCursor } from '../../src/core/cursor.js';
import type { AdapterContext } from './context.js';
import { indexMember, parseIndexMember } from './keys.js';

export class RedisIterationStore implements IterationStore {
  constructor(private readonly ctx: AdapterContext) {}

  private key(id: string): string {
    return `${this.ctx.layout.prefix}:{${id}}:iteration`;
  }

  private indexKey(): string {
    return `${this.ctx.layout.prefix}:idx:iterations`;
  }

  async createIteration(record: IterationRecord): Promise<void> {
    await this.ctx.guard('create an iteration record', async () => {
      const key = this.key(record.id);
      // Only the start task creates it, and the execution guard runs that once at a time.
      if (await this.ctx.client.exists(key)) return;
      await this.ctx.client
        .multi()
        .hset(key, {
          id: record.id,
          callbackTask: record.callbackTask,
          finalizeTask: record.finalizeTask,
          queue: record.queue,
          shardCount: record.shardCount,
          status: record.status,
          createdAt: record.createdAt,
          updatedAt: record.updatedAt,
          deleteMarker: record.deleteMarker ? '1' : '0',
          expiresAt: record.expiresAt,
          shardsDone: 0,
        })
        .pexpireat(key, record.expiresAt)
        .exec();
      await this.ctx.client.zadd(this.indexKey(), 0, indexMember(record.createdAt, record.id));
    });
  }

  async getIteration(id: string): Promise<IterationRecord | undefined> {
    const hash = await this.ctx.guard('read an iteration record', () => this.ctx.client.hgetall(this.key(id)));
    return parseIteration(hash);
  }

  async listIterations(query: { cursor?: string; limit?: number }): Promise<{ records: IterationRecord[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 1000);
    return this.ctx.guard('list iterations', async () => {
      const max = query.cursor ? `(${indexMember(decodeCursor(query.cursor).createdAt, decodeCursor(query.cursor).id)}` : '+';
      const members = await this.ctx.client.zrangebylex(this.indexKey(), '-', max).then((all) => all.reverse());
      const records: IterationRecord[] = [];
      let last: { createdAt: number; id: string } | undefined;
      for (const member of members) {
        const position = parseIndexMember(member);
        const record = await this.getIteration(position.id);
        if (!record) {
          // Expired or deleted: prune the index entry lazily.
          await this.ctx.client.zrem(this.indexKey(), member);
          continue;
        }
        if (records.length === limit) return { records, nextCursor: encodeCursor(last!) };
        records.push(record);
        last = position;
      }
      return { records };
    });
  }

  async startIteration(id: string, shardCount: number, now: number): Promise<void> {
    await this.ctx.guard('start an iteration', async () => {
      const key = this.key(id);
      const status = await this.ctx.client.hget(key, 'status');
      if (status !== 'splitting') return;
      await this.ctx.client.hset(key, { shardCount, status: 'running', updatedAt: now });
    });
  }

  async recordShardProgress(id: string, shardIndex: number, update: ShardProgressUpdate): Promise<void> {
    await this.ctx.guard('record shard progress', () =>
      this.ctx.scripts.run(
        'shardProgress',
        [this.key(id)],
        [shardIndex, update.processedDelta, update.errorsDelta, update.now, update.lastError ? JSON.stringify(update.lastError) : ''],
      ),
    );
  }

  async completeShard(id: string, shardIndex: number, now: number): Promise<{ allDone: boolean; shardsDone: number }> {
    const reply = (await this.ctx.guard('complete an iteration shard', () =>
      this.ctx.scripts.run('completeShard', [this.key(id)], [shardIndex, now]),
    )) as number[];
    if (reply[0] === -1) return { allDone: false, shardsDone: 0 };
    return { allDone: reply[0] === 1, shardsDone: Number(reply[1]) };
  }

  async finishIteration(id: string, status: Extract<IterationStatus, 'finalizing' | 'succeeded' | 'failed'>, now: number): Promise<void> {
    await this.ctx.guard('finish an iteration', async () => {
      const key = this.key(id);
      if (!(await this.ctx.client.exists(key))) return;
      await this.ctx.client.hset(key, { status, updatedAt: now, ...(status === 'finalizing' ? {} : { finishedAt: now }) });
    });
  }

  async deleteIteration(id: string): Promise<void> {
    await this.ctx.guard('delete an iteration', () => this.ctx.client.del(this.key(id)));
  }
}

function parseIteration(hash: Record<string, string>): IterationRecord | undefined {
  if (!hash.id) return undefined;
  const shardCount = Number(hash.shardCount ?? 0);
  const shards: ShardProgress[] = [];
  for (let index = 0; index < shardCount; index += 1) {
    const p = `shard:${index}:`;
    const done = hash[`${p}done`];
    const lastError = hash[`${p}lastError`];
    shards.push({
      index,
      processed: Number(hash[`${p}processed`] ?? 0),
      errors: Number(hash[`${p}errors`] ?? 0),
      done: done !== undefined,
      ...(hash[`${p}startedAt`] ? { startedAt: Number(hash[`${p}startedAt`]) } : {}),
      ...(done !== undefined ? { finishedAt: Number(done) } : {}),
      ...(lastError ? { lastError: JSON.parse(lastError) as TaskErrorInfo } : {}),
    });
  }
  return {
    id: hash.id,
    callbackTask: hash.callbackTask ?? '',
    finalizeTask: hash.finalizeTask ?? '',
    queue: hash.queue ?? 'default',
    shardCount,
    status: (hash.status ?? 'splitting') as IterationStatus,
    createdAt: Number(hash.createdAt),
    updatedAt: Number(hash.updatedAt),
    ...(hash.finishedAt ? { finishedAt: Number(hash.finishedAt) } : {}),
    shards,
    deleteMarker: hash.deleteMarker === '1',
    expiresAt: Number(hash.expiresAt),
  };
}
