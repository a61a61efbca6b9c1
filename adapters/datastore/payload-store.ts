/**
 * Payload bytes across entities: a Datastore entity holds at most 1,048,572 bytes, so a payload
 * is cut into 1,000,000-byte chunks. The head entity (<P>Payload, name = id) carries the first
 * chunk and { size, chunks, generation, expiresAt }; chunks 1..n-1 are its children, named
 * "<generation>:<index>". A reader follows the head, so it never mixes the chunks of two puts of
 * one id; chunks of an older generation stay until the payload is deleted or swept, which removes
 * every child of the head.
 *
 * A commit outside a transaction is not all-or-nothing on Datastore (some mutations may apply
 * when the call fails), so a payload of several chunks is written chunks first, in commits of
 * their own, and the head alone last: the head exists only once every chunk of its generation
 * does, and get() also checks the bytes add up to the head's size. A put that fails half-way
 * leaves the previous head (or none) in place, and so the previous payload (or none).
 */
import { randomBytes } from 'node:crypto';
import type { Key } from '@google-cloud/datastore';
import type { PayloadStore } from '../../src/core/stores.js';
import type { AdapterContext, EntityData, EntityWrite } from './context.js';

export const CHUNK_BYTES = 1_000_000;
/**
 * Chunks go in commits of up to this many bytes. Datastore takes 10 MiB per commit, but Google's
 * emulators refuse gRPC messages over 4 MiB (RESOURCE_EXHAUSTED), and a few more round trips for
 * a payload of several MB cost little beside its transfer.
 */
const COMMIT_BYTES = 3 * CHUNK_BYTES;
/** Chunks per Lookup, so that no single response grows past a few MB. */
const CHUNKS_PER_LOOKUP = 4;

export function payloadKey(ctx: AdapterContext, id: string): Key {
  return ctx.key(ctx.kinds.payload, id);
}

function chunkKey(ctx: AdapterContext, head: Key, generation: string, index: number): Key {
  return ctx.childKey(head, ctx.kinds.payloadChunk, `${generation}:${index}`);
}

const slice = (data: Uint8Array, index: number): Buffer =>
  Buffer.from(data.buffer, data.byteOffset + index * CHUNK_BYTES, Math.min(CHUNK_BYTES, data.byteLength - index * CHUNK_BYTES));

/** The head and chunk entities of a payload, head first. */
export function payloadWrites(ctx: AdapterContext, id: string, data: Uint8Array, expiresAt: number): EntityWrite[] {
  const head = payloadKey(ctx, id);
  const generation = randomBytes(6).toString('base64url');
  const chunks = Math.max(1, Math.ceil(data.byteLength / CHUNK_BYTES));
  const writes: EntityWrite[] = [
    {
      key: head,
      data: { size: data.byteLength, chunks, generation, expiresAt, data: slice(data, 0) },
      excludeFromIndexes: ['size', 'chunks', 'generation', 'data'],
    },
  ];
  for (let index = 1; index < chunks; index += 1) {
    writes.push({ key: chunkKey(ctx, head, generation, index), data: { data: slice(data, index) }, excludeFromIndexes: ['data'] });
  }
  return writes;
}

export class DatastorePayloadStore implements PayloadStore {
  constructor(private readonly ctx: AdapterContext) {}

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    // A payload whose time is already up is no payload.
    if (ttlMs <= 0) return this.delete(id);
    const [head, ...chunks] = payloadWrites(this.ctx, id, data, this.ctx.now() + ttlMs);
    await this.ctx.guard('store a payload', async () => {
      // Chunks first, the head last and alone: a reader sees all of it or none of it.
      const perCommit = COMMIT_BYTES / CHUNK_BYTES;
      for (let i = 0; i < chunks.length; i += perCommit) await this.ctx.datastore.upsert(chunks.slice(i, i + perCommit));
      await this.ctx.datastore.upsert(head!);
    });
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    return this.ctx.guard('read a payload', async () => {
      const headKey = payloadKey(this.ctx, id);
      const [head] = await this.ctx.read(this.ctx.datastore, [headKey]);
      if (!head || Number(head.expiresAt) <= this.ctx.now()) return undefined;
      const parts: Buffer[] = [head.data as Buffer];
      const count = Number(head.chunks);
      const generation = String(head.generation);
      for (let first = 1; first < count; first += CHUNKS_PER_LOOKUP) {
        const keys: Key[] = [];
        for (let i = first; i < Math.min(count, first + CHUNKS_PER_LOOKUP); i += 1) keys.push(chunkKey(this.ctx, headKey, generation, i));
        const found = await this.ctx.read(this.ctx.datastore, keys);
        // A chunk missing means the payload was deleted while we read it.
        if (found.some((chunk) => !chunk)) return undefined;
        parts.push(...found.map((chunk) => (chunk as EntityData).data as Buffer));
      }
      const bytes = Buffer.concat(parts);
      if (bytes.byteLength !== Number(head.size)) return undefined; // never hand out a partial payload
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
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
