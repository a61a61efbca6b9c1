/**
 * What is particular to the Datastore adapter: the entity layout (chunked payloads, kind prefix,
 * namespace), bounded retries of ABORTED transactions, and the bounded expiry sweep.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Datastore, Transaction } from '@google-cloud/datastore';
import { datastoreStores } from '../../adapters/datastore/index.js';
import { CloudDeferError } from '../../src/core/errors.js';
import type { TaskRecord } from '../../src/core/records.js';
import { openDatastoreHarness, type DatastoreHarness } from './harness.js';
import { rawDatastore } from './raw.js';

const MIB = 1024 * 1024;
const ENTITY_LIMIT = 1_048_572;

function record(id: string, now: number, fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    taskName: 'adapter.task',
    queue: 'default',
    status: 'queued',
    createdAt: now,
    updatedAt: now,
    eta: now,
    attempts: 0,
    executionCount: 0,
    payloadSize: 1,
    history: [],
    version: 1,
    expiresAt: now + 60_000,
    ...fields,
  };
}

/** A client whose transactions' commits fail with ABORTED while `failures.left` lasts. */
function aborting(datastore: Datastore, failures: { left: number; transactions: number }): Datastore {
  return new Proxy(datastore, {
    get(target, property, receiver) {
      if (property !== 'transaction') return Reflect.get(target, property, receiver);
      return (...args: Parameters<Datastore['transaction']>): Transaction => {
        const tx = target.transaction(...args);
        failures.transactions += 1;
        if (failures.left > 0) {
          failures.left -= 1;
          (tx as unknown as { commit: () => Promise<never> }).commit = async () => {
            await tx.rollback().catch(() => undefined);
            throw Object.assign(new Error('10 ABORTED: too much contention on these datastore entities. please try again.'), { code: 10 });
          };
        }
        return tx;
      };
    },
  });
}

describe('Datastore adapter', function () {
  this.timeout(60_000);
  let h: DatastoreHarness;
  before(async () => {
    h = await openDatastoreHarness();
  });
  after(async () => h?.cleanup());

  describe('payloads across entities', () => {
    it('cuts a 5 MiB payload into chunk entities under the entity limit and removes all of them on delete', async () => {
      const id = `p-${Date.now()}`;
      const data = randomBytes(5 * MIB);
      await h.stores.payloads.put(id, data, 60_000);
      const chunks = (await h.raw.entities(h.stores.kinds.payloadChunk)).filter((chunk) => chunk.key.parent?.name === id);
      assert.equal(chunks.length, 5, 'the head holds the first chunk, five children the rest');
      for (const chunk of chunks) assert.ok((chunk.data.data as Buffer).byteLength < ENTITY_LIMIT);
      assert.ok(Buffer.from((await h.stores.payloads.get(id))!).equals(data));
      await h.stores.payloads.put(id, Buffer.from('smaller'), 60_000);
      assert.equal(Buffer.from((await h.stores.payloads.get(id))!).toString(), 'smaller', 'a second put of the id wins');
      await h.stores.payloads.delete(id);
      const left = (await h.raw.entities(h.stores.kinds.payloadChunk)).filter((chunk) => chunk.key.parent?.name === id);
      assert.deepEqual(left, [], 'chunks of both generations removed');
      assert.equal(await h.raw.rawPayload(id), undefined);
    });

    it('writes a payload too large for one commit in several (chunks first, head last) and reads it back whole', async () => {
      const id = `p-big-${Date.now()}`;
      const data = randomBytes(12 * MIB);
      await h.stores.payloads.put(id, data, 60_000);
      assert.ok(Buffer.from((await h.stores.payloads.get(id))!).equals(data));
      await h.stores.payloads.delete(id);
    });
  });

  it('does not load @google-cloud/datastore itself: only the client the app passes in does', () => {
    const entry = path.resolve(__dirname, '..', '..', 'adapters', 'datastore', 'index.js');
    const loaded = `Object.keys(require.cache).filter((f) => /@google-cloud[\\\\/]datastore[\\\\/]/.test(f)).length`;
    const script = `require(${JSON.stringify(entry)}); const before = ${loaded}; require('@google-cloud/datastore'); console.log(before, ${loaded} > 0)`;
    assert.equal(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim(), '0 true', 'none before, some once the app loads it');
  });

  it('reads no private field of the client (no x_ or _x properties, no skipCommit)', () => {
    const folder = path.resolve(__dirname, '..', '..', '..', 'adapters', 'datastore');
    for (const file of readdirSync(folder).filter((name) => name.endsWith('.ts'))) {
      const code = readFileSync(path.join(folder, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      assert.doesNotMatch(code, /\.(\w+_|_\w+)\b|skipCommit|modifiedEntities/, file);
    }
  });

  it('refuses a record too large for an entity with advice, rather than failing at the service', async () => {
    const now = Date.now();
    await assert.rejects(h.stores.state.createTask(record(`big-${now}`, now, { argsJson: 'x'.repeat(1_100_000) }), now), (err: unknown) => {
      return err instanceof CloudDeferError && err.code === 'INVALID_OPTION' && /inlineLimitBytes/.test(err.message);
    });
  });

  it('keeps its entities in its namespace under its kind prefix', async () => {
    const namespace = `${h.env.namespace ?? 'cd'}-tenant`;
    const stores = datastoreStores({ datastore: h.datastore, namespace, kindPrefix: 'Jobs' });
    const now = Date.now();
    const r = record(`ns-${now}`, now, { reference: 'tenant-ref' });
    await stores.state.createTask(r, now);
    assert.equal((await rawDatastore(h.datastore, namespace, 'Jobs').rawTask(r.id))?.id, r.id);
    assert.equal(await h.raw.rawTask(r.id), undefined, 'not in the default layout');
    assert.equal(await h.stores.state.findByReference('tenant-ref'), undefined);
    assert.equal((await stores.state.findByReference('tenant-ref'))?.id, r.id);
  });

  describe('commits meeting contention', () => {
    it('an ABORTED commit is a lost round: the core decides again until one goes through', async () => {
      const failures = { left: 3, transactions: 0 };
      const stores = datastoreStores({ datastore: aborting(h.datastore, failures), namespace: h.stores.namespace });
      const now = Date.now();
      const r = record(`retry-${now}`, now);
      await h.stores.state.createTask(r, now);
      const outcome = await stores.state.acquireLease(r.id, { owner: 'w', now: now + 1, leaseMs: 1000, executionCount: 1 });
      assert.equal(outcome.kind, 'acquired');
      assert.equal(failures.transactions, 4, 'three aborted attempts, then one that committed');
      assert.equal((await h.raw.rawTask(r.id))?.attempts, 1, 'applied once');
    });

    it('a commit that never goes through ends in STORE_UNAVAILABLE, writing nothing', async function () {
      // Every round lost: the retry budget (60 s by default; 3 s here, as a user may set it) ends it.
      this.timeout(60_000);
      const failures = { left: Number.POSITIVE_INFINITY, transactions: 0 };
      const stores = datastoreStores({ datastore: aborting(h.datastore, failures), namespace: h.stores.namespace, retry: { budgetMs: 3_000 } });
      const now = Date.now();
      const r = record(`giveup-${now}`, now, { expiresAt: now + 3_600_000 }); // outlives every round
      await h.stores.state.createTask(r, now);
      await assert.rejects(stores.state.transition(r.id, ['queued'], 'cancelled', {}, now + 1), (err: unknown) => {
        return err instanceof CloudDeferError && err.code === 'STORE_UNAVAILABLE' && /other writers|contention/.test(err.message);
      });
      assert.ok(failures.transactions > 1, 'it tried again before giving up');
      assert.equal((await h.raw.rawTask(r.id))?.status, 'queued');
    });
  });

  describe('sweepExpired', () => {
    it('removes expired records, payloads and iterations in bounded batches, and frees references only of what it removed', async () => {
      let clock = Date.now();
      const stores = datastoreStores({ datastore: h.datastore, namespace: `${h.env.namespace ?? 'cd'}-sweep`, now: () => clock });
      const raw = rawDatastore(h.datastore, stores.namespace);
      const base = clock;
      for (let start = 0; start < 250; start += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, k) =>
            stores.state.createTask(record(`old-${start + k}`, base, { expiresAt: base + 10, reference: `ref-${start + k}` }), base),
          ),
        );
      }
      await stores.state.createTask(record('kept', base, { expiresAt: base + 3_600_000 }), base);
      await stores.payloads.put('old-payload-1', randomBytes(1_500_000), 10);
      await stores.payloads.put('old-payload-2', Buffer.from('x'), 10);
      await stores.iterations.createIteration({
        id: 'old-iteration',
        callbackTask: 'c',
        finalizeTask: 'f',
        queue: 'default',
        shardCount: 0,
        status: 'splitting',
        createdAt: base,
        updatedAt: base,
        shards: [],
        deleteMarker: false,
        expiresAt: base + 10,
      });
      await stores.iterations.startIteration('old-iteration', 3, base);
      clock = base + 20;
      // ref-0's holder expired; a new task takes the reference over before the sweep runs.
      await stores.state.createTask(record('new-holder', clock, { reference: 'ref-0' }), clock);

      assert.equal(await stores.sweepExpired(100), 100);
      assert.equal(await stores.sweepExpired(100), 100);
      assert.equal(await stores.sweepExpired(100), 53, '50 records, 2 payloads, 1 iteration');
      assert.equal(await stores.sweepExpired(100), 0);

      const tasks = (await raw.entities(stores.kinds.task)).map((e) => e.key.name).sort();
      assert.deepEqual(tasks, ['kept', 'new-holder']);
      assert.equal((await stores.state.findByReference('ref-0'))?.id, 'new-holder', 'a reference taken over is kept');
      assert.deepEqual(
        (await raw.entities(stores.kinds.reference)).map((e) => JSON.parse(String(e.data.value)).taskId),
        ['new-holder'],
      );
      for (const kind of [stores.kinds.payload, stores.kinds.payloadChunk, stores.kinds.iteration, stores.kinds.iterationShard]) {
        assert.deepEqual(await raw.entities(kind), [], `${kind} emptied`);
      }
    });
  });
});
