/**
 * Payload bytes, chunked under Firestore's 1 MiB document limit:
 *
 *   cloudDeferPayloads/{id}   { size, chunks, generation, expireAt, data? }
 *     cloudDeferPayloadChunks/{generation}.{n}   { data, expireAt }   n = 0 .. chunks-1
 *
 * Up to CHUNK_BYTES the bytes sit in the head (`chunks: 0`, one document). Larger payloads go in
 * chunk documents named after a fresh generation, so a put over an existing payload never mixes
 * old and new chunks: the head, written last (in the same batch when everything fits in one
 * commit), decides which generation is read. Chunks of a replaced or half-written generation are
 * left to their own expireAt (TTL).
 */
import { randomUUID } from 'node:crypto';
import type { DocumentData, DocumentReference } from '@google-cloud/firestore';
import type { PayloadStore } from '../../src/core/stores.js';
import { checkDocId } from './collections.js';
import type { AdapterContext } from './context.js';

/** Bytes per document, leaving room under 1,048,576 for the name and the other fields. */
export const CHUNK_BYTES = 1_000_000;
/** Bytes per commit, under Firestore's 10 MiB request limit. */
export const MAX_COMMIT_BYTES = 9 * 1024 * 1024;
/**
 * Bytes per commit of a put(): Google's emulator refuses gRPC messages over 4 MiB
 * (RESOURCE_EXHAUSTED), and a few more round trips cost little beside several MB of transfer.
 * Each commit is atomic; the head goes in the last one, so a put cut off half-way leaves the
 * previous head, and the previous generation's chunks, as they were.
 */
const PUT_COMMIT_BYTES = 3 * 1024 * 1024;

export interface DocumentWrite {
  ref: DocumentReference;
  data: DocumentData;
}

export function payloadHead(ctx: AdapterContext, id: string): DocumentReference {
  return ctx.collection(ctx.names.payloads).doc(checkDocId(id, 'Payload id'));
}

function chunkRef(ctx: AdapterContext, head: DocumentReference, generation: string, index: number): DocumentReference {
  return head.collection(ctx.names.payloadChunks).doc(`${generation}.${index}`);
}

/** The documents that hold `data` until `expiresAt` (epoch ms); the head comes last. */
export function payloadWrites(ctx: AdapterContext, id: string, data: Uint8Array, expiresAt: number): DocumentWrite[] {
  const head = payloadHead(ctx, id);
  const expireAt = ctx.expireAt(expiresAt);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength <= CHUNK_BYTES) {
    return [{ ref: head, data: { size: bytes.byteLength, chunks: 0, generation: '', data: Buffer.from(bytes), expireAt } }];
  }
  const generation = randomUUID().replace(/-/g, '');
  const writes: DocumentWrite[] = [];
  for (let offset = 0, n = 0; offset < bytes.byteLength; offset += CHUNK_BYTES, n += 1) {
    writes.push({ ref: chunkRef(ctx, head, generation, n), data: { data: Buffer.from(bytes.subarray(offset, offset + CHUNK_BYTES)), expireAt } });
  }
  writes.push({ ref: head, data: { size: bytes.byteLength, chunks: writes.length, generation, expireAt } });
  return writes;
}

export class FirestorePayloadStore implements PayloadStore {
  constructor(private readonly ctx: AdapterContext) {}

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    const writes = payloadWrites(this.ctx, id, data, this.ctx.now() + ttlMs);
    await this.ctx.guard('store a payload', async () => {
      // As few commits as fit under the request limit; the head is in the last one.
      let batch = this.ctx.firestore.batch();
      let bytes = 0;
      for (const write of writes) {
        if (bytes + CHUNK_BYTES > PUT_COMMIT_BYTES) {
          await batch.commit();
          batch = this.ctx.firestore.batch();
          bytes = 0;
        }
        batch.set(write.ref, write.data);
        bytes += CHUNK_BYTES;
      }
      await batch.commit();
    });
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    return this.ctx.guard('read a payload', async () => {
      const head = await payloadHead(this.ctx, id).get();
      if (!this.ctx.isLive(head)) return undefined;
      const { chunks, generation, size, data } = head.data() as { chunks: number; generation: string; size: number; data?: Uint8Array };
      if (chunks === 0) return data;
      const refs = Array.from({ length: chunks }, (_, n) => chunkRef(this.ctx, head.ref, generation, n));
      const parts = await this.ctx.firestore.getAll(...refs);
      // A chunk missing means the payload was deleted while we read.
      if (parts.some((part) => !part.exists)) return undefined;
      const bytes = Buffer.concat(parts.map((part) => part.get('data') as Uint8Array));
      return bytes.byteLength === size ? bytes : undefined;
    });
  }

  async delete(id: string): Promise<void> {
    await this.ctx.guard('delete a payload', async () => {
      const head = await payloadHead(this.ctx, id).get();
      if (!head.exists) return;
      const { chunks, generation } = head.data() as { chunks: number; generation: string };
      const batch = this.ctx.firestore.batch();
      batch.delete(head.ref);
      for (let n = 0; n < chunks; n += 1) batch.delete(chunkRef(this.ctx, head.ref, generation, n));
      await batch.commit();
    });
  }
}
