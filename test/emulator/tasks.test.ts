/** Task administration through the official client: create, read, list, delete, names and limits. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { assertGrpcError, PARENT, queuePath, seconds, startTestContext, taskPath, toMs, uniqueQueueId, type TestContext } from './helpers.js';

const DAY_MS = 24 * 3600 * 1000;

describe('emulator: tasks', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await startTestContext();
  });
  after(async () => {
    await ctx.close();
  });

  /** A paused queue: tasks stay put while a test looks at them. */
  async function pausedQueue(): Promise<{ id: string; name: string }> {
    const id = uniqueQueueId();
    const name = queuePath(id);
    await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    await ctx.client.pauseQueue({ name });
    return { id, name };
  }

  it('gives a task created without a name a generated numeric id', async () => {
    const queue = await pausedQueue();
    const [task] = await ctx.client.createTask({ parent: queue.name, task: { httpRequest: { url: ctx.target.url() } } });
    assert.match(task.name!, new RegExp(`^${queue.name}/tasks/\\d{19}$`));
    assert.equal(task.httpRequest?.httpMethod, 'POST', 'POST by default');
    assert.equal(toMs(task.scheduleTime), ctx.clock.now(), 'no schedule_time: now');
    assert.equal(toMs(task.createTime), ctx.clock.now());
    assert.equal(toMs(task.dispatchDeadline), 600_000, 'HTTP targets: 10 minutes by default');
    assert.equal(task.dispatchCount, 0);
    assert.equal(task.view, 'BASIC');
    const [second] = await ctx.client.createTask({ parent: queue.name, task: { httpRequest: { url: ctx.target.url() } } });
    assert.notEqual(second.name, task.name);
  });

  it('keeps a task name given by the caller', async () => {
    const queue = await pausedQueue();
    const name = `${queue.name}/tasks/invoice_42-a`;
    const [task] = await ctx.client.createTask({ parent: queue.name, task: { name, httpRequest: { url: ctx.target.url() } } });
    assert.equal(task.name, name);
    const [read] = await ctx.client.getTask({ name });
    assert.equal(read.name, name);
  });

  it('refuses invalid task ids and names in another queue', async () => {
    const queue = await pausedQueue();
    await assertGrpcError(
      ctx.client.createTask({ parent: queue.name, task: { name: `${queue.name}/tasks/not a valid id`, httpRequest: { url: ctx.target.url() } } }),
      status.INVALID_ARGUMENT,
      /Task ID "not a valid id" can contain only letters/,
    );
    await assertGrpcError(
      ctx.client.createTask({ parent: queue.name, task: { name: `${queue.name}/tasks/${'x'.repeat(501)}`, httpRequest: { url: ctx.target.url() } } }),
      status.INVALID_ARGUMENT,
      /between 1 and 500 characters/,
    );
    const [ok] = await ctx.client.createTask({
      parent: queue.name,
      task: { name: `${queue.name}/tasks/${'x'.repeat(500)}`, httpRequest: { url: ctx.target.url() } },
    });
    assert.ok(ok.name);
    await assertGrpcError(
      ctx.client.createTask({ parent: queue.name, task: { name: taskPath('elsewhere', 't1'), httpRequest: { url: ctx.target.url() } } }),
      status.INVALID_ARGUMENT,
      /must be the same as the queue name in the named task/,
    );
  });

  it('answers NOT_FOUND when the queue does not exist', async () => {
    await assertGrpcError(
      ctx.client.createTask({ parent: queuePath('missing-queue'), task: { httpRequest: { url: ctx.target.url() } } }),
      status.NOT_FOUND,
      /Queue does not exist/,
    );
  });

  it('validates the target: URL, method and body, and the dispatch deadline', async () => {
    const queue = await pausedQueue();
    const create = (task: Record<string, unknown>) => ctx.client.createTask({ parent: queue.name, task });
    await assertGrpcError(create({ httpRequest: { url: '' } }), status.INVALID_ARGUMENT, /url is required/);
    await assertGrpcError(create({ httpRequest: { url: 'ftp://example.com/x' } }), status.INVALID_ARGUMENT, /must start with 'http:\/\/' or 'https:\/\/'/);
    await assertGrpcError(create({}), status.INVALID_ARGUMENT);
    await assertGrpcError(create({ httpRequest: { url: ctx.target.url(), httpMethod: 'GET', body: Buffer.from('x') } }), status.INVALID_ARGUMENT, /body/);
    await assertGrpcError(create({ httpRequest: { url: ctx.target.url() }, dispatchDeadline: seconds(10) }), status.INVALID_ARGUMENT, /dispatchDeadline/);
    await assertGrpcError(create({ httpRequest: { url: ctx.target.url() }, dispatchDeadline: seconds(31 * 60) }), status.INVALID_ARGUMENT);
    const [ok] = await create({ httpRequest: { url: ctx.target.url() }, dispatchDeadline: seconds(20 * 60) });
    assert.equal(toMs(ok.dispatchDeadline), 20 * 60 * 1000);
    const [appEngine] = await create({ appEngineHttpRequest: { relativeUri: '/work' }, dispatchDeadline: seconds(2 * 3600) });
    assert.equal(toMs(appEngine.dispatchDeadline), 2 * 3600 * 1000, 'App Engine allows up to 24 h 15 s');
    await assertGrpcError(create({ appEngineHttpRequest: { relativeUri: '/work' }, dispatchDeadline: seconds(25 * 3600) }), status.INVALID_ARGUMENT);
    await assertGrpcError(create({ appEngineHttpRequest: { relativeUri: 'no-slash' } }), status.INVALID_ARGUMENT);
    await assertGrpcError(create({ httpRequest: { url: ctx.target.url(), headers: { 'X-Bad': 'line\nbreak' } } }), status.INVALID_ARGUMENT, /invalid header/);
    await assertGrpcError(create({ httpRequest: { url: ctx.target.url(), headers: { 'X-Big': 'x'.repeat(81 * 1024) } } }), status.INVALID_ARGUMENT, /80KB/);
  });

  it('honours schedule_time up to 30 days ahead and refuses more', async () => {
    const queue = await pausedQueue();
    const now = ctx.clock.now();
    const [later] = await ctx.client.createTask({
      parent: queue.name,
      task: { httpRequest: { url: ctx.target.url() }, scheduleTime: seconds((now + 29 * DAY_MS) / 1000) },
    });
    assert.equal(toMs(later.scheduleTime), now + 29 * DAY_MS);
    const [past] = await ctx.client.createTask({
      parent: queue.name,
      task: { httpRequest: { url: ctx.target.url() }, scheduleTime: seconds((now - 3600_000) / 1000) },
    });
    assert.equal(toMs(past.scheduleTime), now, 'a past schedule_time becomes now');
    await assertGrpcError(
      ctx.client.createTask({
        parent: queue.name,
        task: { httpRequest: { url: ctx.target.url() }, scheduleTime: seconds((now + 30 * DAY_MS + 1000) / 1000) },
      }),
      status.INVALID_ARGUMENT,
      /30 days/,
    );
  });

  it('refuses a task over the size limit (1 MiB by default) with "Task size too large"', async () => {
    const queue = await pausedQueue();
    const create = (bytes: number) =>
      ctx.client.createTask({ parent: queue.name, task: { httpRequest: { url: ctx.target.url(), body: Buffer.alloc(bytes, 97) } } });
    await assertGrpcError(create(1024 * 1024 + 1), status.INVALID_ARGUMENT, /^Task size too large$/);
    const [fits] = await create(1000 * 1024);
    assert.ok(fits.name);
  });

  it('de-duplicates task names while the task exists and for the window after it is gone', async () => {
    const queue = await pausedQueue();
    const name = `${queue.name}/tasks/once-only`;
    const create = () => ctx.client.createTask({ parent: queue.name, task: { name, httpRequest: { url: ctx.target.url() } } });
    await create();
    await assertGrpcError(create(), status.ALREADY_EXISTS, /already exists/);
    await ctx.client.deleteTask({ name });
    await assertGrpcError(ctx.client.getTask({ name }), status.NOT_FOUND, /existed recently/);
    // A deleted task still blocks its name.
    await assertGrpcError(create(), status.ALREADY_EXISTS);
    await ctx.clock.advance(3600_000 - 1000);
    await assertGrpcError(create(), status.ALREADY_EXISTS);
    await ctx.clock.advance(1000);
    const [again] = await create();
    assert.equal(again.name, name, 'free again after one hour');
  });

  it('de-duplicates the name of a task that ran successfully, for the window', async () => {
    const id = uniqueQueueId();
    const queueName = queuePath(id);
    await ctx.client.createQueue({ parent: PARENT, queue: { name: queueName } });
    const name = `${queueName}/tasks/ran-once`;
    const before = ctx.target.requests.length;
    await ctx.client.createTask({ parent: queueName, task: { name, httpRequest: { url: ctx.target.url('/ran') } } });
    await ctx.target.waitForRequests(before + 1);
    await ctx.emulator.idle();
    await assertGrpcError(ctx.client.getTask({ name }), status.NOT_FOUND, /existed recently/);
    await assertGrpcError(ctx.client.createTask({ parent: queueName, task: { name, httpRequest: { url: ctx.target.url('/ran') } } }), status.ALREADY_EXISTS);
    await ctx.clock.advance(3600_000);
    await ctx.client.createTask({ parent: queueName, task: { name, httpRequest: { url: ctx.target.url('/ran') } } });
  });

  it('lists tasks page by page; BASIC omits the body, FULL includes it', async () => {
    const queue = await pausedQueue();
    const created = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const [task] = await ctx.client.createTask({
        parent: queue.name,
        task: { httpRequest: { url: ctx.target.url(), body: Buffer.from(`body-${i}`) } },
      });
      created.add(task.name!);
    }
    const seen: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const [tasks, , response] = await ctx.client.listTasks({ parent: queue.name, pageSize: 2, pageToken }, { autoPaginate: false });
      for (const task of tasks) {
        assert.equal(task.view, 'BASIC');
        assert.equal(task.httpRequest?.body?.length ?? 0, 0, 'BASIC has no body');
        seen.push(task.name!);
      }
      pageToken = response?.nextPageToken || undefined;
      pages++;
    } while (pageToken);
    assert.equal(pages, 3);
    assert.deepEqual(new Set(seen), created);
    assert.equal(seen.length, 5);

    const [full] = await ctx.client.listTasks({ parent: queue.name, responseView: 'FULL' });
    assert.deepEqual(
      full.map((t) => Buffer.from(t.httpRequest!.body!).toString()).sort(),
      [0, 1, 2, 3, 4].map((i) => `body-${i}`),
    );
    const [one] = await ctx.client.getTask({ name: seen[0], responseView: 'FULL' });
    assert.equal(one.view, 'FULL');
    assert.match(Buffer.from(one.httpRequest!.body!).toString(), /^body-\d$/);
    const [basic] = await ctx.client.getTask({ name: seen[0] });
    assert.equal(basic.httpRequest?.body?.length ?? 0, 0);
  });

  it('deletes a task; deleting or getting it again answers NOT_FOUND', async () => {
    const queue = await pausedQueue();
    const [task] = await ctx.client.createTask({ parent: queue.name, task: { httpRequest: { url: ctx.target.url() } } });
    await ctx.client.deleteTask({ name: task.name });
    await assertGrpcError(ctx.client.deleteTask({ name: task.name }), status.NOT_FOUND);
    await assertGrpcError(ctx.client.getTask({ name: taskPath(queue.id, 'never-there') }), status.NOT_FOUND, /Requested entity was not found/);
    const [tasks] = await ctx.client.listTasks({ parent: queue.name });
    assert.equal(tasks.length, 0);
  });

  it('keeps the headers given and sets User-Agent, as Cloud Tasks stores them', async () => {
    const queue = await pausedQueue();
    const [task] = await ctx.client.createTask({
      parent: queue.name,
      task: {
        httpRequest: {
          url: ctx.target.url(),
          headers: { 'X-Mixed-Case': 'kept', 'content-type': 'application/json', 'User-Agent': 'mine', Host: 'ignored' },
        },
      },
    });
    assert.deepEqual(task.httpRequest?.headers, {
      'X-Mixed-Case': 'kept',
      'content-type': 'application/json',
      'User-Agent': 'Google-Cloud-Tasks',
    });
  });
});
