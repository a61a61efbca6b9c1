/**
 * Outbox documents: cloudDeferOutbox/{taskId} = { taskId, createdAt, request, body }. `request` is
 * the EnqueueRequest as JSON without its body, and `body` the body's bytes: stored as bytes rather
 * than base64 text, an inline task body near Cloud Tasks' 1 MiB still fits in one document.
 * No expireAt: an entry lives until its enqueue is known to have happened.
 */
import type { DocumentData, DocumentSnapshot } from '@google-cloud/firestore';
import type { OutboxEntry } from '../../src/core/stores.js';
import type { EnqueueRequest } from '../../src/core/transport.js';

export function outboxDocument(entry: OutboxEntry): DocumentData {
  const { bodyBase64, ...request } = entry.request;
  return {
    taskId: entry.taskId,
    createdAt: entry.createdAt,
    request: JSON.stringify(request),
    body: Buffer.from(bodyBase64, 'base64'),
  };
}

export function documentToOutbox(snapshot: DocumentSnapshot): OutboxEntry {
  const data = snapshot.data()!;
  const request = JSON.parse(data.request as string) as Omit<EnqueueRequest, 'bodyBase64'>;
  const body = data.body as Uint8Array;
  return {
    taskId: data.taskId as string,
    createdAt: data.createdAt as number,
    request: { ...request, bodyBase64: Buffer.from(body).toString('base64') } as EnqueueRequest,
  };
}
