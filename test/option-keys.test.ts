/** A misspelt option is refused with INVALID_OPTION naming it and the nearest valid key, never ignored. */
import assert from 'node:assert/strict';
import { createDeferred, type Deferred } from '../src/index.js';

function refused(key: string, nearest: string) {
  return (err: Error & { code?: string }) => {
    assert.equal(err.code, 'INVALID_OPTION');
    assert.match(err.message, new RegExp(`"${key}"`));
    assert.match(err.message, new RegExp(`did you mean "${nearest}"`));
    return true;
  };
}

describe('unknown option keys', () => {
  let deferred: Deferred;
  before(() => {
    deferred = createDeferred({ logger: false });
  });
  after(() => deferred.close());

  it('createDeferred({ queus }) is refused, naming "queues"', () => {
    assert.throws(() => createDeferred({ queus: [] } as never), refused('queus', 'queues'));
  });

  it('task(name, fn, { queu }) is refused, naming "queue"', () => {
    assert.throws(() => deferred.task('t', () => {}, { queu: 'x' } as never), refused('queu', 'queue'));
  });

  it('defer(..., { countdwn: 60 }) rejects, naming "countdown", and enqueues nothing', async () => {
    const handle = deferred.task('counted', () => {});
    await assert.rejects(deferred.defer(handle, [], { countdwn: 60 } as never), refused('countdwn', 'countdown'));
    await assert.rejects(handle.with({ refrence: 'r' } as never).defer(), refused('refrence', 'reference'));
    assert.equal((await deferred.listTasks()).records.length, 0);
  });

  it('deferIteration(..., { shard: 3 }) rejects, naming "shards"', async () => {
    const each = deferred.task('each', (_item: number) => {});
    const done = deferred.task('done', () => {});
    await assert.rejects(deferred.deferIteration([1, 2], each, done, { shard: 3 } as never), refused('shard', 'shards'));
  });

  it('valid options still pass', async () => {
    const handle = deferred.task('fine', () => {}, { queue: 'default', maxAttempts: 2 });
    const info = await deferred.defer(handle, [], { countdown: 60, reference: 'ok' });
    assert.equal(info.reference, 'ok');
  });
});
