/**
 * Payloads larger than one document, for backends with a document size limit (Datastore,
 * Firestore). The bytes are cut into chunks of CHUNK_BYTES named after a fresh generation; the
 * head document names that generation and the size. Chunks are written first, in commits of
 * their own, and the head last and alone: a put cut off half-way leaves the previous head (or
 * none) in place, and a reader follows the head, so it never mixes the chunks of two puts of one
 * id. A reader also checks that the bytes add up to the head's size, so a partial write is never
 * read as whole. The backend only stores: it names the documents and reads and writes them.
 */
import { randomBytes } from 'node:crypto';

/** Bytes per chunk, leaving room under the backends' 1 MiB document limit for the name and fields. */
export const CHUNK_BYTES = 1_000_000;

/** What a backend reads from a live head: which chunk documents to read after the head's own bytes. */
export interface PayloadHead {
  size: number;
  generation: string;
  /** The bytes the head holds itself (they come first). */
  data?: Uint8Array;
  /** The numbers of the chunk documents that hold the rest, in order. */
  chunks: readonly number[];
}

/** What a backend provides. `Item` is one document write of its own client. */
export interface ChunkBackend<Item> {
  /** Chunk documents per commit (under the request limit); each commit is one call of `write`. */
  readonly chunksPerCommit: number;
  /** Chunk documents per read, so that no single response grows past a few MB. */
  readonly chunksPerRead: number;
  write(items: Item[]): Promise<void>;
  /** The head, or undefined when it is absent or its time is up. */
  readHead(id: string): Promise<PayloadHead | undefined>;
  /** The bytes of the chunk documents `numbers` of `head`; undefined for one that is missing. */
  readChunks(id: string, head: PayloadHead, numbers: readonly number[]): Promise<Array<Uint8Array | undefined>>;
}

/** A fresh generation: chunk documents of two puts of one id never share a name. */
export const newGeneration = (): string => randomBytes(9).toString('base64url');

/** `data` cut into chunks of CHUNK_BYTES (one, empty, for no bytes), each a copy. */
export function cutPayload(data: Uint8Array): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.byteLength || chunks.length === 0; offset += CHUNK_BYTES) {
    chunks.push(Buffer.from(data.subarray(offset, offset + CHUNK_BYTES)));
  }
  return chunks;
}

/** Writes the chunk documents in commits of `chunksPerCommit`, then the head alone. */
export async function writeChunked<Item>(backend: ChunkBackend<Item>, head: Item, chunks: readonly Item[]): Promise<void> {
  for (let i = 0; i < chunks.length; i += backend.chunksPerCommit) await backend.write(chunks.slice(i, i + backend.chunksPerCommit));
  await backend.write([head]);
}

/** The payload `id` whole, or undefined when it is absent, expired, or was deleted or cut while we read. */
export async function readChunked<Item>(backend: ChunkBackend<Item>, id: string): Promise<Uint8Array | undefined> {
  const head = await backend.readHead(id);
  if (!head) return undefined;
  const parts: Uint8Array[] = head.data ? [head.data] : [];
  for (let i = 0; i < head.chunks.length; i += backend.chunksPerRead) {
    const found = await backend.readChunks(id, head, head.chunks.slice(i, i + backend.chunksPerRead));
    // A chunk missing means the payload was deleted while we read it.
    if (found.some((chunk) => !chunk)) return undefined;
    parts.push(...(found as Uint8Array[]));
  }
  const bytes = Buffer.concat(parts);
  if (bytes.byteLength !== head.size) return undefined; // never hand out a partial payload
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
