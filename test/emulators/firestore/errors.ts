// The errors the emulator answers with, as gRPC status codes.
import { status } from '@grpc/grpc-js';

export class FirestoreError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'FirestoreError';
  }
}

/** Firestore's own wording; the client's retry loop only looks at the code. */
export const CONTENTION_MESSAGE = 'Too much contention on these documents. Please try again.';

export const invalidArgument = (message: string): FirestoreError => new FirestoreError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): FirestoreError => new FirestoreError(status.NOT_FOUND, message);
export const alreadyExists = (message: string): FirestoreError => new FirestoreError(status.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string): FirestoreError => new FirestoreError(status.FAILED_PRECONDITION, message);
export const aborted = (message = CONTENTION_MESSAGE): FirestoreError => new FirestoreError(status.ABORTED, message);
export const unimplemented = (message: string): FirestoreError => new FirestoreError(status.UNIMPLEMENTED, message);
