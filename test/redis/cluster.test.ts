/**
 * The Redis adapter on a real Redis Cluster (3 masters started here): the whole store contract,
 * plus what only a Cluster can show: slots, and a MULTI joined by a defer in its slot.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { redisStores, type RedisStores } from '../../adapters/redis/index.js';
import type { TaskRecord } from '../../src/core/records.js';
import type { StagedDefer } from '../../src/core/stores.js';
import { describeStoreContract } from '../contract/suite.js';
import { HOUR, sampleRecord } from '../helpers/records.js';
import { deleteKeys, openRedisHarness, testPrefix, whenReady } from './harness.js';
import { startLocalCluster, type LocalCluster } from './local-cluster.js';
import { rawTaskKey, redisRawBackend } from './raw.js';

describe('redis cluster', function () {
  this.timeout(120_000);
  let cluster: LocalCluster | undefined;
  const connect = (): Cluster => new Cluster(cluster!.nodes);

  before(async function () {
    try {
      cluster = await startLocalCluster(3);
    } catch (error) {
      // Skipped, not failed: this machine cannot run redis-server cluster nodes (e.g. redis-server
      // or redis-cli missing, or no free ports); the single-node tests still cover the adapter.
      console.log(`    ! Redis Cluster tests skipped: could not start a local 3-master cluster: ${(error as Error).message}`);
      this.skip();
    }
  });

  after(async function () {
    await cluster?.stop();
  });

  describeStoreContract('redis cluster', () => openRedisHarness({ connect, maxContenderConnections: 8 }));

  describe('slots and transactions', function () {
    let client: Cluster;
    let prefix: string;
    let stores: RedisStores;

    before(async function () {
      prefix = testPrefix();
      client = connect();
      await whenReady(client);
      stores = redisStores({ client, prefix, sweepIntervalMs: 0 });
    });

    after(async function () {
      await stores.close();
      await deleteKeys(client, prefix);
      await client.quit();
    });

    function newRecord(fields: Partial<TaskRecord>): TaskRecord {
      return sampleRecord('cluster.task', fields, stores);
    }

    function staged(record: TaskRecord): StagedDefer {
      return {
        record: { ...record, payloadRef: record.id },
        outbox: {
          taskId: record.id,
          createdAt: record.createdAt,
          request: { queue: 'default', bodyBase64: '', headers: {}, target: { kind: 'http', url: 'https://example.com/' } },
        },
        payload: { id: record.id, data: Buffer.from('payload'), ttlMs: HOUR },
      };
    }

    const keySlot = async (key: string): Promise<number> => Number(await client.nodes('master')[0]!.cluster('KEYSLOT', key));

    it("puts a task in its reference's slot, which honours the reference's {hash tag}", async function () {
      const reference = `{order:${randomUUID()}}:receipt`;
      const record = newRecord({ reference });
      assert.deepEqual(await stores.state.createTask(record, record.createdAt), { created: true });
      const userTag = reference.slice(1, reference.indexOf('}'));
      assert.equal(await keySlot(rawTaskKey(prefix, record.id)), await keySlot(`{${userTag}}`));
    });

    it("refuses, with a clear error, a task id that is not in its reference's slot", async function () {
      const record = newRecord({ reference: `r-${randomUUID()}` });
      record.id = `zz${randomUUID()}`;
      await assert.rejects(stores.state.createTask(record, record.createdAt), { code: 'INVALID_OPTION' });
    });

    it('joins a MULTI whose keys share the task slot: record, outbox entry and payload commit with it', async function () {
      const tag = `order:${randomUUID()}`;
      const defer = staged(newRecord({ reference: `{${tag}}:receipt` }));
      let runs = 0;
      const tx = client.multi().set(`{${tag}}:status`, 'paid');
      assert.ok(stores.transactions[0].accepts(tx), 'a MULTI of the Cluster client');
      await stores.transactions[0].stage(tx, defer, async () => {
        runs += 1;
      });
      const results = await tx.exec();
      assert.ok(results && results.every(([error]) => !error));
      assert.equal(runs, 1);
      const raw = redisRawBackend(client, prefix);
      assert.deepEqual(await raw.rawTask(defer.record.id), JSON.parse(JSON.stringify(defer.record)));
      assert.deepEqual(await raw.rawOutbox(defer.record.id), defer.outbox);
      assert.ok(await raw.rawPayload(defer.record.id));
      assert.ok((await stores.state.listOutbox(Date.now() + 1, 100)).some((entry) => entry.taskId === defer.record.id));
      const listed = await stores.state.listTasks({ reference: `{${tag}}:receipt` });
      assert.deepEqual(
        listed.records.map((r) => r.id),
        [defer.record.id],
        'indexed after EXEC',
      );
    });

    it('a MULTI spanning slots is refused by EXEC: nothing of the defer is written, afterCommit never runs', async function () {
      const defer = staged(newRecord({}));
      let runs = 0;
      const tx = client.multi().set(`{elsewhere-${randomUUID()}}:k`, 'v');
      await stores.transactions[0].stage(tx, defer, async () => {
        runs += 1;
      });
      await assert.rejects(tx.exec());
      assert.equal(runs, 0);
      const raw = redisRawBackend(client, prefix);
      assert.equal(await raw.rawTask(defer.record.id), undefined);
      assert.equal(await raw.rawOutbox(defer.record.id), undefined);
    });
  });
});
