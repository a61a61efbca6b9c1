import { toStoreError as toGoogleStoreError } from '../google/errors.js';

export { GRPC, grpcCode, isAborted } from '../google/errors.js';

const FIRESTORE = { name: 'Firestore', emulatorVariable: 'FIRESTORE_EMULATOR_HOST' } as const;

export const toStoreError = (where: string, action: string, error: unknown): unknown => toGoogleStoreError(FIRESTORE, where, action, error);
