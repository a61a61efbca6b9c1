import { datastoreBackends, openDatastoreHarness } from '../datastore/harness.js';
import { googleSuites } from '../emulators/google.js';
import { describeStoreContract } from './suite.js';

// On Google's Datastore-mode emulator every lost round of a contended commit costs a lock timeout
// (about 2 s): the whole contract there takes minutes and its 64-way shard case has timed out on a
// loaded machine, so it runs there only when asked (CLOUD_DEFER_GOOGLE_SUITES=datastore-mode); the
// transaction and shard-contention suites run there by default. Paging: 1,000 records on Google's,
// 5,000 on ours (10,000 took 30 s of npm test).
const onGoogleByRequest = googleSuites().size > 0;
for (const { label, backend, google } of datastoreBackends().filter((b) => !b.google || onGoogleByRequest)) {
  describeStoreContract(`datastore${label}`, () => openDatastoreHarness({}, backend), { pagingRecords: google ? 1_000 : 5_000 });
}
