/**
 * Payload bytes, chunked under Firestore's 1 MiB document limit:
 *
 *   cloudDeferPayloads/{id}   { size, chunks, generation, expireAt, data? }
 *     cloudDeferPayloadChunks/{generation}.{n}   { data, expireAt }   n = 0 .. chunks-1
 *
 * Up to CHUNK_BYTES the bytes sit in the head (`chunks: 0`). Larger payloads go in chunk documents
 * named after a fresh generation, and the head, written last, names the generation to read: a put
 * cut off half-way leaves the previous head and its chunks as they were, so a partial write is
 * never read as whole. Chunks of a replaced or half-written generation are left to their TTL.
 */
import { randomUUID } from 'node:crypto';
import type { DocumentData, DocumentReference } from '@google-cloud/firestore';
import type { PayloadStore } from '../../src/core/stores.js';
import { checkDocId, type FirestoreDocuments } from './documents.js';

/** Bytes per document, leaving room under 1,048,576 for the name and the other fields. */
const CHUNK_BYTES = 1_000_000;
/** Bytes per commit of a transactional defer's payload, under Firestore's 10 MiB request limit. */
export const MAX_COMMIT_BYTES = 9 * 1024 * 1024;
/** Bytes per commit of a put(): Google's emulator refuses gRPC messages over 4 MiB; each commit is atomic. */
const PUT_COMMIT_BYTES = 3 * 1024 * 1024;

function payloadHead(docs: FirestoreDocuments, id: string): DocumentReference {
  return docs.firestore.collection(docs.names.payloads).doc(checkDocId(id, 'Payload id'));
}

const chunkRef = (docs: FirestoreDocuments, head: DocumentReference, generation: string, n: number) =>
  head.collection(docs.names.payloadChunks).doc(`${generation}.${n}`);

/** The documents that hold `data` until `expiresAt` (epoch ms); the head comes last. */
export function payloadWrites(
  docs: FirestoreDocuments,
  id: string,
  data: Uint8Array,
  expiresAt: number,
): Array<{ ref: DocumentReference; data: DocumentData }> {
  const head = payloadHead(docs, id);
  const expireAt = docs.library.Timestamp.fromMillis(expiresAt);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength <= CHUNK_BYTES) return [{ ref: head, data: { size: bytes.byteLength, chunks: 0, generation: '', data: Buffer.from(bytes), expireAt } }];
  const generation = randomUUID().replace(/-/g, '');
  const writes = [];
  for (let offset = 0, n = 0; offset < bytes.byteLength; offset += CHUNK_BYTES, n += 1) {
    writes.push({ ref: chunkRef(docs, head, generation, n), data: { data: Buffer.from(bytes.subarray(offset, offset + CHUNK_BYTES)), expireAt } });
  }
  return [...writes, { ref: head, data: { size: bytes.byteLength, chunks: writes.length, generation, expireAt } }];
}

export class FirestorePayloadStore implements PayloadStore {
  constructor(private readonly docs: FirestoreDocuments) {}

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    const writes = payloadWrites(this.docs, id, data, this.docs.now() + ttlMs);
    await this.docs.guard('store a payload', async () => {
      // As few commits as fit under the request limit; the head is in the last one.
      const perCommit = Math.floor(PUT_COMMIT_BYTES / CHUNK_BYTES);
      for (let start = 0; start < writes.length; start += perCommit) {
        const batch = this.docs.firestore.batch();
        for (const write of writes.slice(start, start + perCommit)) batch.set(write.ref, write.data);
        await batch.commit();
      }
    });
  }

  get(id: string): Promise<Uint8Array | undefined> {
    return this.docs.guard('read a payload', async () => {
      const head = await payloadHead(this.docs, id).get();
      if (!this.docs.isLive(head)) return undefined;
      const { chunks, generation, size, data } = head.data() as { chunks: number; generation: string; size: number; data?: Uint8Array };
      if (chunks === 0) return data;
      const parts = await this.docs.firestore.getAll(...Array.from({ length: chunks }, (_, n) => chunkRef(this.docs, head.ref, generation, n)));
      // A chunk missing means the payload was deleted while we read.
      if (parts.some((part) => !part.exists)) return undefined;
      const bytes = Buffer.concat(parts.map((part) => part.get('data') as Uint8Array));
      return bytes.byteLength === size ? bytes : undefined;
    });
  }

  async delete(id: string): Promise<void> {
    await this.docs.guard('delete a payload', async () => {
      const head = await payloadHead(this.docs, id).get();
      if (!head.exists) return;
      const { chunks, generation } = head.data() as { chunks: number; generation: string };
      const batch = this.docs.firestore.batch().delete(head.ref);
      for (let n = 0; n < chunks; n += 1) batch.delete(chunkRef(this.docs, head.ref, generation, n));
      await batch.commit();
    });
  }
}
