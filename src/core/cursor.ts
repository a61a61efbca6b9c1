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
