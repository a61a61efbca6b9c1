/** Listing order and cursors shared by every StateStore: newest first, ties broken by id. */
import { CloudDeferError } from './errors.js';

export interface CursorPosition {
  createdAt: number;
  id: string;
}

/** Sort comparator: negative when `a` comes before `b` in newest-first order. */
export function newestFirst(a: CursorPosition, b: CursorPosition): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(`${position.createdAt}:${position.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): CursorPosition {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const sep = text.indexOf(':');
  const createdAt = Number(text.slice(0, sep));
  const id = text.slice(sep + 1);
  if (sep <= 0 || !Number.isFinite(createdAt) || !id) {
    throw new CloudDeferError('INVALID_OPTION', 'The cursor is not one this store returned; pass nextCursor from a previous page.');
  }
  return { createdAt, id };
}

/** A listing's page size: `limit` (default 50) within 1..1000. */
export const pageLimit = (limit: number | undefined): number => Math.min(Math.max(limit ?? 50, 1), 1000);

/** A page from up to `limit + 1` records found newest first: the one past `limit` says there is a next page. */
export function pageOf<T extends CursorPosition>(found: readonly T[], limit: number): { records: T[]; nextCursor?: string } {
  const records = found.slice(0, limit);
  const last = records[records.length - 1];
  return { records, ...(found.length > limit && last ? { nextCursor: encodeCursor(last) } : {}) };
}
