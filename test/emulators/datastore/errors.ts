import { status } from '@grpc/grpc-js';

/** An error the emulator answers with, carrying the gRPC status code the real service uses. */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

export const CONTENTION_MESSAGE = 'too much contention on these datastore entities. please try again.';
export const INVALID_TRANSACTION_MESSAGE = 'The referenced transaction has expired or is no longer valid.';

export const invalidArgument = (message: string): RpcError => new RpcError(status.INVALID_ARGUMENT, message);
export const unimplemented = (message: string): RpcError => new RpcError(status.UNIMPLEMENTED, message);
export const aborted = (): RpcError => new RpcError(status.ABORTED, CONTENTION_MESSAGE);
export const invalidTransaction = (): RpcError => invalidArgument(INVALID_TRANSACTION_MESSAGE);
