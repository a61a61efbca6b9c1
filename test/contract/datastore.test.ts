import { datastoreBackends, openDatastoreHarness } from '../datastore/harness.js';
import { describeStoreContract } from './suite.js';

// On Google's emulator every lost round of a contended commit costs a lock timeout (about 2 s),
// so the paging case there holds 1,000 records; 5,000 on ours (10,000 took 30 s of the suite).
for (const { label, backend, google } of datastoreBackends()) {
  describeStoreContract(`datastore${label}`, () => openDatastoreHarness({}, backend), { pagingRecords: google ? 1_000 : 5_000 });
}
