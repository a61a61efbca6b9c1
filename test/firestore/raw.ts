/**
 * The tests' own reading of what the Firestore adapter writes (its documented layout: see
 * adapters/firestore/collections.ts, codec.ts, payload-store.ts, outbox.ts), written apart from
 * the adapter's code so the contract suite checks stored documents, not the adapter's view.
 *
 * Expiry is read the way a Firestore TTL policy on `expireAt` defines it: a document whose
 * expireAt has passed is due for deletion, and TTL deletion is lazy (the emulators do not run it
 * at all), so such a document counts as gone.
 */
import type { DocumentSnapshot, Firestore, Timestamp } from '@google-cloud/firestore';
import type { TaskRecord } from '../../src/core/records.js';
import type { OutboxEntry } from '../../src/core/stores.js';
import type { RawBackend } from '../contract/suite.js';

function expiry(snapshot: DocumentSnapshot): number | undefined {
  if (!snapshot.exists) return undefined;
  const at = (snapshot.get('expireAt') as Timestamp).toMillis();
  return at > Date.now() ? at : undefined;
}

export function firestoreRawBackend(firestore: Firestore, prefix: string): RawBackend & { rawPayloadDocuments(id: string): Promise<number> } {
  const taskDoc = (id: string) => firestore.doc(`${prefix}Tasks/${id}`);
  const payloadDoc = (id: string) => firestore.doc(`${prefix}Payloads/${id}`);
  return {
    async rawTask(id) {
      const snapshot = await taskDoc(id).get();
      if (expiry(snapshot) === undefined) return undefined;
      const { expireAt: _expireAt, ...record } = snapshot.data()!;
      return record as TaskRecord;
    },
    async rawPayload(id) {
      const head = await payloadDoc(id).get();
      if (expiry(head) === undefined) return undefined;
      const { chunks, generation, data } = head.data() as { chunks: number; generation: string; data?: Buffer };
      if (chunks === 0) return data;
      const parts: Buffer[] = [];
      for (let n = 0; n < chunks; n += 1) {
        parts.push((await head.ref.collection(`${prefix}PayloadChunks`).doc(`${generation}.${n}`).get()).get('data') as Buffer);
      }
      return Buffer.concat(parts);
    },
    rawTaskExpiry: async (id) => expiry(await taskDoc(id).get()),
    rawPayloadExpiry: async (id) => expiry(await payloadDoc(id).get()),
    async rawOutbox(taskId) {
      const snapshot = await firestore.doc(`${prefix}Outbox/${taskId}`).get();
      if (!snapshot.exists) return undefined;
      const { createdAt, request, body } = snapshot.data() as { createdAt: number; request: string; body: Buffer };
      return { taskId, createdAt, request: { ...JSON.parse(request), bodyBase64: body.toString('base64') } } as OutboxEntry;
    },
    /** Documents holding the payload: its head plus its chunk documents. */
    async rawPayloadDocuments(id) {
      const chunks = await payloadDoc(id).collection(`${prefix}PayloadChunks`).get();
      return ((await payloadDoc(id).get()).exists ? 1 : 0) + chunks.size;
    },
  };
}
