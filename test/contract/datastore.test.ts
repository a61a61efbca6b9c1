import { datastoreBackends, openDatastoreHarness } from '../datastore/harness.js';
import { describeStoreContract } from './suite.js';

// Ours, then Google's Firestore emulator in Datastore mode when gcloud is present. There every
// lost round of a contended commit costs a lock wait (about 2 s), so the contract takes minutes:
// npm test runs these files in a second mocha process beside the rest (scripts/run-tests.cjs).
// Paging: 1,000 records on Google's, 5,000 on ours (10,000 took 30 s of npm test). Races: 12
// callers on Google's, 50 on ours, and a 120 s limit there. Google's emulator has no deadlock
// resolution (contenders holding read locks on one entity all time out together, where the
// service lets the older transaction win), so a race there converges only once a contender
// happens to run alone, and its time grows faster than the number of callers: 50, then 20
// callers each took 4-7 s in most runs and once over the stores' 60 s retry budget under the
// parallel npm test load (20 completions of 10 shards twice: 4.7 s alone, 27.6 s beside three
// busy processes, over 60 s twice in npm test). 32 completions of 32 shards on Google's
// Datastore mode run in test/iteration/datastore-contention.test.ts.
for (const { label, backend, google } of datastoreBackends()) {
  describeStoreContract(`datastore${label}`, () => openDatastoreHarness({}, backend), {
    pagingRecords: google ? 1_000 : 5_000,
    raceCallers: google ? 12 : 50,
    ...(google ? { timeoutMs: 120_000 } : {}),
  });
}
