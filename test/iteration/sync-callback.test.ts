/**
 * An iteration callback that is a plain (not async) function is called without an await per
 * item (issue 18: that await was a fifth of a no-op iteration's time). It must behave as an
 * async one does: a synchronous throw counts as the item's failure and re-defers from it, a
 * returned promise is still awaited before the next item, and every item is touched once.
 */
import assert from 'node:assert/strict';
import { currentShardIndex, type DeferredTask } from '../../src/index.js';
import { startApp, type TestApp } from '../helpers/app.js';

describe('deferIteration: synchronous callbacks (memory stores)', function () {
  this.timeout(60_000);
  let app: TestApp;
  const touched: string[] = [];
  let failOnce: string | undefined;
  let inFlight = 0;
  let maxInFlight = 0;
  let syncTask: DeferredTask<[string]>;
  let promiseTask: DeferredTask<[string]>;
  let finalize: DeferredTask<[]>;
  let finalized = 0;

  before(async () => {
    app = await startApp('express', {}, (deferred) => {
      syncTask = deferred.task('touch-sync', (item: string) => {
        if (item === failOnce) {
          failOnce = undefined;
          throw new Error(`cannot touch ${item} yet`);
        }
        assert.notEqual(currentShardIndex(), undefined, 'the shard context holds in a synchronous callback');
        touched.push(item);
      });
      // Not async, but returns a promise: the next item must wait for it.
      promiseTask = deferred.task('touch-promise', (item: string) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            inFlight -= 1;
            touched.push(item);
            resolve();
          }, 2),
        );
      });
      finalize = deferred.task('finish-sync', () => {
        finalized += 1;
      });
    });
  });
  after(async () => {
    await app.close();
  });
  beforeEach(() => {
    touched.length = 0;
    finalized = 0;
    maxInFlight = 0;
  });

  const ids = (n: number) => Array.from({ length: n }, (_, i) => `item-${String(i).padStart(4, '0')}`);

  it('a synchronous throw on one item re-defers from it: every item touched once, the error recorded, finalize once', async () => {
    const items = ids(30);
    failOnce = items[12];
    const info = await app.deferred.deferIteration(items, syncTask, finalize, { shards: 1, retryCountdown: 1, deleteMarker: false });
    await app.deferred.drain({ timeoutMs: 30_000 });
    await info.wait({ timeoutMs: 10_000 });
    assert.deepEqual(touched, items, 'in order, each once');
    assert.equal(finalized, 1);
    const record = await app.deferred.getIteration(info.id);
    assert.equal(record?.shards[0]?.errors, 1);
    assert.match(record?.shards[0]?.lastError?.message ?? '', /cannot touch item-0012/);
  });

  it('a callback returning a promise is awaited before the next item of its shard', async () => {
    const items = ids(20);
    const info = await app.deferred.deferIteration(items, promiseTask, finalize, { shards: 1 });
    await app.deferred.drain({ timeoutMs: 30_000 });
    await info.wait({ timeoutMs: 10_000 });
    assert.deepEqual(touched, items);
    assert.equal(maxInFlight, 1, 'one item at a time within a shard');
    assert.equal(finalized, 1);
  });
});
