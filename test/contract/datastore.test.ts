import { openDatastoreHarness } from '../datastore/harness.js';
import { describeStoreContract } from './suite.js';

describeStoreContract('datastore', () => openDatastoreHarness());
