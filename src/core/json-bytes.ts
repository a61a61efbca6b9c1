/** Bytes -> UTF-8 text -> JSON, failing with INVALID_ENVELOPE: shared by the codec and the envelope. */
import { isUtf8 } from 'node:buffer';
import { CloudDeferError } from './errors.js';

export function invalid(message: string, cause?: unknown): CloudDeferError {
  return new CloudDeferError('INVALID_ENVELOPE', message, cause === undefined ? undefined : { cause });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function bytesToText(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw invalid('expected a Uint8Array of UTF-8 JSON');
  if (!isUtf8(bytes)) throw invalid('payload is not valid UTF-8');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`payload is not valid JSON: ${errorMessage(err)}`, err);
  }
}
