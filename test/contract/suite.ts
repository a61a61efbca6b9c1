/** The contract suite lives in the library (cloud-defer/adapter) so that adapter authors run the same one. */
export { describeStoreContract, type ContractHarness, type ContractOptions, type RawBackend } from '../../adapters/contract.js';
