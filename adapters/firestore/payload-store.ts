/**
 * Payload bytes, chunked by src/core/payload-chunks.ts under Firestore's 1 MiB document limit:
 *
 *   cloudDeferPayloads/{id}   { size, chunks, generation, expireAt, data? }
 *     cloudDeferPayloadChunks/{generation}.{n}   { data, expireAt }   n = 0 .. chunks-1
 *
 * Up to CHUNK_BYTES the bytes sit in the head (`chunks: 0`); larger payloads go in chunk documents
 * only. Chunks of a replaced or half-written generation are left to their TTL.
 */
import type { DocumentData, DocumentReference } from '@google-cloud/firestore';
import { CHUNK_BYTES, type ChunkBackend, cutPayload, newGeneration, readChunked, writeChunked } from '../../src/core/payload-chunks.js';
import type { PayloadStore } from '../../src/core/stores.js';
import { checkDocId, type FirestoreDocuments } from './documents.js';

/** Bytes per commit of a transactional defer's payload, under Firestore's 10 MiB request limit. */
export const MAX_COMMIT_BYTES = 9 * 1024 * 1024;

type Write = { ref: DocumentReference; data: DocumentData };

function payloadHead(docs: FirestoreDocuments, id: string): DocumentReference {
  return docs.firestore.collection(docs.names.payloads).doc(checkDocId(id, 'Payload id'));
}

const chunkRef = (docs: FirestoreDocuments, head: DocumentReference, generation: string, n: number) =>
  head.collection(docs.names.payloadChunks).doc(`${generation}.${n}`);

/** The documents that hold `data` until `expiresAt` (epoch ms); the head comes last. */
export function payloadWrites(docs: FirestoreDocuments, id: string, data: Uint8Array, expiresAt: number): Write[] {
  const head = payloadHead(docs, id);
  const expireAt = docs.library.Timestamp.fromMillis(expiresAt);
  const size = data.byteLength;
  if (size <= CHUNK_BYTES) return [{ ref: head, data: { size, chunks: 0, generation: '', data: Buffer.from(data), expireAt } }];
  const generation = newGeneration();
  const writes = cutPayload(data).map((chunk, n) => ({ ref: chunkRef(docs, head, generation, n), data: { data: chunk, expireAt } }));
  return [...writes, { ref: head, data: { size, chunks: writes.length, generation, expireAt } }];
}

export class FirestorePayloadStore implements PayloadStore {
  private readonly backend: ChunkBackend<Write>;

  constructor(private readonly docs: FirestoreDocuments) {
    this.backend = {
      // Google's emulator refuses gRPC messages over 4 MiB; each commit is atomic.
      chunksPerCommit: 3,
      // getAll reads every chunk in one call.
      chunksPerRead: Number.POSITIVE_INFINITY,
      write: async (items) => {
        const batch = docs.firestore.batch();
        for (const write of items) batch.set(write.ref, write.data);
        await batch.commit();
      },
      readHead: async (id) => {
        const head = await payloadHead(docs, id).get();
        if (!docs.isLive(head)) return undefined;
        const { chunks, generation, size, data } = head.data() as { chunks: number; generation: string; size: number; data?: Uint8Array };
        return chunks === 0
          ? { size, generation, ...(data ? { data } : {}), chunks: [] }
          : { size, generation, chunks: Array.from({ length: chunks }, (_, n) => n) };
      },
      readChunks: async (id, head, numbers) => {
        const parts = await docs.firestore.getAll(...numbers.map((n) => chunkRef(docs, payloadHead(docs, id), head.generation, n)));
        return parts.map((part) => (part.exists ? (part.get('data') as Uint8Array) : undefined));
      },
    };
  }

  async put(id: string, data: Uint8Array, ttlMs: number): Promise<void> {
    const writes = payloadWrites(this.docs, id, data, this.docs.now() + ttlMs);
    await this.docs.guard('store a payload', () => writeChunked(this.backend, writes.at(-1)!, writes.slice(0, -1)));
  }

  get(id: string): Promise<Uint8Array | undefined> {
    return this.docs.guard('read a payload', () => readChunked(this.backend, id));
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
