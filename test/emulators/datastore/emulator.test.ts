/** Starting, wiring, resetting and stopping our emulator, and the test harness around it. */
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { Datastore, DatastoreClient } from '@google-cloud/datastore';
import { datastoreForTests } from './harness.js';
import { startDatastoreEmulator, type DatastoreEmulator } from './index.js';
import { assertRpcError } from './test-support.js';

const ENV_NAMES = ['DATASTORE_EMULATOR_HOST', 'DATASTORE_PROJECT_ID'] as const;

/** Runs `body` with the Datastore variables set as given (undefined: unset), then restores them. */
async function withEnv(values: Partial<Record<(typeof ENV_NAMES)[number], string>>, body: () => Promise<void>): Promise<void> {
  const saved = ENV_NAMES.map((name) => [name, process.env[name]] as const);
  for (const name of ENV_NAMES) {
    if (values[name] === undefined) delete process.env[name];
    else process.env[name] = values[name];
  }
  try {
    await body();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

async function closeClients(datastore: Datastore): Promise<void> {
  await Promise.all([...datastore.clients_.values()].map((client) => client.close()));
}

describe('datastore emulator: server and harness', () => {
  let emulator: DatastoreEmulator;
  before(async () => {
    emulator = await startDatastoreEmulator();
  });
  after(async () => {
    await emulator.stop();
  });

  it('listens on 127.0.0.1 and a free port by default', () => {
    assert.equal(emulator.host, '127.0.0.1');
    assert.ok(emulator.port > 0);
    assert.equal(emulator.address, `127.0.0.1:${emulator.port}`);
  });

  it('serves the official client wired with DATASTORE_EMULATOR_HOST', async () => {
    await withEnv({ DATASTORE_EMULATOR_HOST: emulator.address, DATASTORE_PROJECT_ID: 'env-project' }, async () => {
      const datastore = new Datastore();
      const key = datastore.key(['Wired', 'env']);
      await datastore.save({ key, data: { via: 'env' } });
      assert.equal((await datastore.get(key))[0].via, 'env');
      await closeClients(datastore);
    });
  });

  it('serves the official client wired with apiEndpoint "host:port" and insecure credentials', async () => {
    await withEnv({}, async () => {
      const datastore = new Datastore({
        projectId: 'endpoint-project',
        apiEndpoint: emulator.address,
        sslCreds: grpc.credentials.createInsecure(),
      });
      const key = datastore.key(['Wired', 'endpoint']);
      await datastore.save({ key, data: { via: 'endpoint' } });
      assert.equal((await datastore.get(key))[0].via, 'endpoint');
      await closeClients(datastore);
    });
  });

  it('keeps projects apart', async () => {
    await withEnv({}, async () => {
      const options = { apiEndpoint: emulator.address }; // 127.0.0.1: the client picks plaintext itself.
      const first = new Datastore({ ...options, projectId: 'first-project' });
      const second = new Datastore({ ...options, projectId: 'second-project' });
      await first.save({ key: first.key(['Owned', 'x']), data: { n: 1 } });
      assert.equal((await second.get(second.key(['Owned', 'x'])))[0], undefined);
      await Promise.all([closeClients(first), closeClients(second)]);
    });
  });

  it('forgets every entity and open transaction on reset()', async () => {
    const raw = new DatastoreClient({ apiEndpoint: emulator.host, port: emulator.port, sslCreds: grpc.credentials.createInsecure() });
    const projectId = 'reset-project';
    const key = { path: [{ kind: 'Kept', name: 'k' }] };
    await raw.commit({ projectId, mode: 'NON_TRANSACTIONAL', mutations: [{ upsert: { key } }] });
    const [begun] = await raw.beginTransaction({ projectId });
    emulator.reset();
    const [lookup] = await raw.lookup({ projectId, keys: [key] });
    assert.equal(lookup.found!.length, 0);
    await assertRpcError(raw.rollback({ projectId, transaction: begun.transaction }), status.INVALID_ARGUMENT);
    await raw.close();
  });

  it('reserves ids given with complete keys and refuses incomplete ones', async () => {
    const raw = new DatastoreClient({ apiEndpoint: emulator.host, port: emulator.port, sslCreds: grpc.credentials.createInsecure() });
    const projectId = 'reserve-project';
    await raw.reserveIds({ projectId, keys: [{ path: [{ kind: 'Reserved', id: 2251799813685248 }] }] });
    const [allocated] = await raw.allocateIds({ projectId, keys: [{ path: [{ kind: 'Reserved' }] }] });
    assert.notEqual(String(allocated.keys![0].path![0].id), '2251799813685248', 'the reserved id is skipped');
    await assertRpcError(raw.reserveIds({ projectId, keys: [{ path: [{ kind: 'Reserved' }] }] }), status.INVALID_ARGUMENT);
    await raw.close();
  });

  it('harness: uses an emulator named by DATASTORE_EMULATOR_HOST, in a namespace of its own', async () => {
    let namespace: string | undefined;
    await withEnv({ DATASTORE_EMULATOR_HOST: emulator.address, DATASTORE_PROJECT_ID: 'harness-project' }, async () => {
      const harness = await datastoreForTests();
      assert.equal(harness.external, true);
      assert.equal(harness.emulator, undefined);
      namespace = harness.namespace;
      assert.ok(namespace, 'a namespace isolates the run');
      const key = harness.datastore.key(['Harnessed', 'h']);
      assert.equal(key.namespace, harness.namespace);
      await harness.datastore.save({ key, data: { n: 1 } });
      await harness.stop();
    });
    const raw = new DatastoreClient({ apiEndpoint: emulator.host, port: emulator.port, sslCreds: grpc.credentials.createInsecure() });
    const query = { kind: [{ name: 'Harnessed' }] };
    const [inDefault] = await raw.runQuery({ projectId: 'harness-project', query });
    assert.equal(inDefault.batch!.entityResults!.length, 0, 'nothing landed in the default namespace');
    const [inOwn] = await raw.runQuery({ projectId: 'harness-project', partitionId: { namespaceId: namespace }, query });
    assert.equal(inOwn.batch!.entityResults!.length, 1);
    await raw.close();
  });

  it('harness: otherwise starts our emulator and leaves the environment as it found it', async () => {
    await withEnv({}, async () => {
      const harness = await datastoreForTests();
      assert.equal(harness.external, false);
      assert.ok(harness.emulator);
      assert.equal(process.env.DATASTORE_EMULATOR_HOST, undefined, 'restored right after the client was made');
      const key = harness.datastore.key(['Harnessed', 'own']);
      await harness.datastore.save({ key, data: { n: 1 } });
      assert.equal((await harness.datastore.get(key))[0].n, 1);
      await harness.stop();
    });
  });
});
