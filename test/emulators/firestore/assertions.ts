// Assertions shared by the emulator's test files.
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';

/** Asserts that `promise` rejects with the gRPC status `code`. */
export async function rejectsWithCode(promise: Promise<unknown>, code: status): Promise<void> {
  await assert.rejects(promise, (error: { code?: number; message?: string }) => {
    assert.equal(error.code, code, `expected status ${status[code]}, got ${error.code}: ${error.message}`);
    return true;
  });
}
