// Errors the API answers with, as gRPC status codes and messages worded like Cloud Tasks' own.
import { status } from '@grpc/grpc-js';

export class ApiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const invalidArgument = (message: string): ApiError => new ApiError(status.INVALID_ARGUMENT, message);
export const failedPrecondition = (message: string): ApiError => new ApiError(status.FAILED_PRECONDITION, message);

// Messages Cloud Tasks answers with (recorded from the real service).
export const QUEUE_NOT_FOUND = 'Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize.';
export const ENTITY_NOT_FOUND = 'Requested entity was not found.';
export const TASK_RECENTLY_GONE =
  'The task no longer exists, though a task with this name existed recently. The task either successfully completed or was deleted.';
export const QUEUE_ALREADY_EXISTS = 'Queue already exists';
export const TASK_ALREADY_EXISTS = 'Requested entity already exists';
export const QUEUE_NAME_RECENTLY_USED = 'The queue cannot be created because a queue with this name existed too recently.';
export const TASK_TOO_LARGE = 'Task size too large';

export const queueNotFound = (): ApiError => new ApiError(status.NOT_FOUND, QUEUE_NOT_FOUND);
export const taskNotFound = (recentlyGone = false): ApiError => new ApiError(status.NOT_FOUND, recentlyGone ? TASK_RECENTLY_GONE : ENTITY_NOT_FOUND);
