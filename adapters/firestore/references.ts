/**
 * Reference claims: cloudDeferReferences/{sha256(reference)} = { taskId, reference, expireAt }
 * names the newest task created with the reference. Whether it still *holds* the reference is
 * read from that task's record (unfinished, uniqueUntil not passed, record not expired), so
 * finishing a task frees its reference without touching the claim.
 *
 * The claim's expireAt follows its task's retention (it must not be deleted by TTL while the
 * record is kept): compare-and-set writes that move a record's expiresAt move the claim's too.
 */
import type { DocumentData, DocumentSnapshot, WriteBatch } from '@google-cloud/firestore';
import { isFinished, type TaskRecord } from '../../src/core/records.js';
import { millisOf, unchangedSince, type AdapterContext } from './context.js';

export function claimDocument(ctx: AdapterContext, record: TaskRecord & { reference: string }): DocumentData {
  return { taskId: record.id, reference: record.reference, expireAt: ctx.expireAt(record.expiresAt) };
}

/** The id of the task a claim names, if the claim document is there. */
export function claimHolderId(snapshot: DocumentSnapshot): string | undefined {
  const taskId: unknown = snapshot.exists ? snapshot.get('taskId') : undefined;
  return typeof taskId === 'string' ? taskId : undefined;
}

/** Does this (live) record keep others from taking its reference at `now`? */
export function holds(holder: TaskRecord | undefined, now: number): holder is TaskRecord {
  return holder !== undefined && !isFinished(holder.status) && (holder.uniqueUntil === undefined || holder.uniqueUntil > now);
}

/** Add to `batch` the claim's move to the record's new retention, when the claim is still the record's. */
export function followRetention(ctx: AdapterContext, batch: WriteBatch, claim: DocumentSnapshot | undefined, record: TaskRecord): void {
  if (!claim || claimHolderId(claim) !== record.id) return;
  const expireAt = millisOf(claim.get('expireAt'));
  if (expireAt !== undefined && expireAt >= record.expiresAt) return;
  batch.update(claim.ref, { expireAt: ctx.expireAt(record.expiresAt) }, unchangedSince(claim));
}
