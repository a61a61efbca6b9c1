import { toStoreError as toGoogleStoreError } from '../google/errors.js';

export { GRPC, grpcCode, isAborted } from '../google/errors.js';

const DATASTORE = { name: 'Datastore', emulatorVariable: 'DATASTORE_EMULATOR_HOST' } as const;

export const toStoreError = (where: string, action: string, error: unknown): unknown => toGoogleStoreError(DATASTORE, where, action, error);
