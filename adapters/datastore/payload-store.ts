/**
 * Payload bytes across entities, chunked by src/core/payload-chunks.ts: a Datastore entity holds at
 * most 1,048,572 bytes. The head entity (<P>Payload, name = id) carries the first chunk and
 * { size, chunks, generation, expiresAt }; chunks 1..n-1 are its children, named
 * "<generation>:<index>". Chunks of an older generation stay until the payload is deleted or
 * swept, which removes every child of the head. A commit outside a transaction is not
 * all-or-nothing on Datastore (some mutations may apply when the call fails), which is why the
 * head goes in a commit of its own, after every chunk of its generation.
 */
import type { Key } from '@google-cloud/datastore';
import { type ChunkBackend, cutPayload, newGeneration, readChunked, writeChunked } from '../../src/core/payload-chunks.js';
import type { PayloadStore } from '../../src/core/stores.js';
import type { AdapterContext, EntityData, EntityWrite } from './context.js';

export function payloadKey(ctx: AdapterContext, id: string): Key {
  return ctx.key(ctx.kinds.payload, id);
}

const chunkKey = (ctx: AdapterContext, head: Key, generation: string, index: number): Key =>
  ctx.childKey(head, ctx.kinds.payloadChunk, `${generation}:${index}`);

/** The head and chunk entities of a payload, head first. */
export function payloadWrites(ctx: AdapterContext, id: string, data: Uint8Array, expiresAt: number): EntityWrite[] {
  const head = payloadKey(ctx, id);
  const generation = newGeneration();
  const [first, ...rest] = cutPayload(data);
  const writes: EntityWrite[] = [
    {
      key: head,
      data: { size: data.byteLength, chunks: rest.length + 1, generation, expiresAt, data: first },
      excludeFromIndexes: ['size', 'chunks', 'generation', 'data'],
    },
  ];
  rest.forEach((chunk, i) => writes.push({ key: chunkKey(ctx, head, generation, i + 1), data: { data: chunk }, excludeFromIndexes: ['data'] }));
  return writes;
}

export class DatastorePayloadStore implements PayloadStore {
  private readonly backend: ChunkBackend<EntityWrite>;

  constructor(private readonly ctx: AdapterContext) {
    this.backend = {
      // Datastore takes 10 MiB per commit, but Google's emulators refuse gRPC messages over 4 MiB
      // (RESOURCE_EXHAUSTED), and a few more round trips for a payload of several MB cost little.
      chunksPerCommit: 3,
      chunksPerRead: 4,
      write: async (items) => void (await ctx.datastore.upsert(items)),
      readHead: async (id) => {
        const [head] = await ctx.read(ctx.datastore, [payloadKey(ctx, id)]);
        if (!head || Number(head.expiresAt) <= ctx.now()) return undefined;
        const chunks = Array.from({ length: Number(head.chunks) - 1 }, (_, i) => i + 1);
        return { size: Number(head.size), generation: String(head.generation), data: head.data as Buffer, chunks };
      },
      readChunks: async (id, head, numbers) => {
        const found = await ctx.read(
          ctx.datastore,
          numbers.map((n) => chunkKey(ctx, payloadKey(ctx, id), head.generation, n)),
        );
        return found.map((chunk) => (chunk as EntityData | undefined)?.data as Buffer | undefined);
      },
    };
  }

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    // A payload whose time is already up is no payload.
    if (ttlMs <= 0) return this.delete(id);
    const [head, ...chunks] = payloadWrites(this.ctx, id, data, this.ctx.now() + ttlMs);
    await this.ctx.guard('store a payload', () => writeChunked(this.backend, head!, chunks));
  }

  get(id: string): Promise<Uint8Array | undefined> {
    return this.ctx.guard('read a payload', () => readChunked(this.backend, id));
  }

  async delete(id: string): Promise<void> {
    await this.ctx.guard('delete a payload', () => deletePayloads(this.ctx, [id]));
  }
}

/** Remove payload heads and every chunk under them (of any generation). */
export async function deletePayloads(ctx: AdapterContext, ids: readonly string[]): Promise<void> {
  const keys = await Promise.all(
    ids.map(async (id) => {
      const head = payloadKey(ctx, id);
      const chunks = await ctx.runQuery(ctx.query(ctx.kinds.payloadChunk).hasAncestor(head).select('__key__'));
      return [head, ...chunks.map((chunk) => ctx.keyOf(chunk))];
    }),
  );
  if (keys.length > 0) await ctx.datastore.delete(keys.flat());
}
