/** App Engine HTTP targets: sent to appEngineBaseUrl with X-AppEngine-* headers and routing reported. */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { advanceUntilRequests, PARENT, PROJECT, queuePath, seconds, startTestContext, TargetServer, toMs, uniqueQueueId, type TestContext } from './helpers.js';
import { ManualClock, startEmulator, createEmulatorClient } from '../../src/emulator/index.js';

describe('emulator: App Engine targets', () => {
  let ctx: TestContext;
  before(async () => {
    const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
    // The target must exist before the emulator so its URL can be the App Engine base URL.
    const target = await TargetServer.start(clock);
    const emulator = await startEmulator({ clock, appEngineBaseUrl: target.baseUrl });
    const client = createEmulatorClient(emulator);
    ctx = {
      clock,
      emulator,
      client,
      target,
      close: async () => {
        await client.close();
        await emulator.stop();
        await target.close();
      },
    };
  });
  after(async () => {
    await ctx.close();
  });
  beforeEach(() => {
    ctx.target.requests.length = 0;
    ctx.target.responder = () => ({ status: 200 });
  });

  async function queue(fields: Record<string, unknown> = {}): Promise<{ id: string; name: string }> {
    const id = uniqueQueueId();
    const name = queuePath(id);
    await ctx.client.createQueue({ parent: PARENT, queue: { name, ...fields } });
    return { id, name };
  }

  it('sends the task to base URL + relative_uri with the X-AppEngine-* headers', async () => {
    const q = await queue();
    const [task] = await ctx.client.createTask({
      parent: q.name,
      task: {
        name: `${q.name}/tasks/ae-1`,
        appEngineHttpRequest: {
          relativeUri: '/_ah/queue/deferred?shard=2',
          body: Buffer.from('payload'),
          headers: { 'X-Custom': 'kept', 'X-AppEngine-QueueName': 'forged' },
        },
      },
    });
    const [request] = await ctx.target.waitForRequests(1);
    assert.equal(request!.method, 'POST');
    assert.equal(request!.url, '/_ah/queue/deferred?shard=2');
    assert.equal(request!.body.toString(), 'payload');
    const h = request!.headers;
    assert.equal(h['x-appengine-queuename'], q.id, 'set by Cloud Tasks, not by the task');
    assert.equal(h['x-appengine-taskname'], 'ae-1');
    assert.equal(h['x-appengine-taskretrycount'], '0');
    assert.equal(h['x-appengine-taskexecutioncount'], '0');
    assert.equal(h['x-appengine-tasketa'], (toMs(task.scheduleTime) / 1000).toFixed(6));
    assert.equal(h['content-type'], 'application/octet-stream', 'App Engine default Content-Type');
    assert.equal(h['user-agent'], 'AppEngine-Google; (+http://code.google.com/appengine)');
    assert.equal(h['x-custom'], 'kept');
    assert.equal(h['x-cloudtasks-queuename'], undefined, 'no X-CloudTasks-* headers on App Engine targets');
    // Off App Engine the headers prove nothing: the emulator signs the dispatch (App Engine's default account, audience the URL).
    const claims = JSON.parse(Buffer.from((h['authorization'] ?? '').replace(/^Bearer /, '').split('.')[1] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.equal(claims['email'], `${PROJECT}@appspot.gserviceaccount.com`);
    assert.equal(claims['aud'], `${ctx.target.baseUrl}/_ah/queue/deferred`);
  });

  it('reports the routing with its host, and the queue override wins over the task routing', async () => {
    const q = await queue();
    await ctx.client.pauseQueue({ name: q.name });
    const [task] = await ctx.client.createTask({
      parent: q.name,
      task: { appEngineHttpRequest: { relativeUri: '/work', appEngineRouting: { service: 'worker', version: 'v2' } } },
    });
    assert.equal(task.appEngineHttpRequest?.appEngineRouting?.service, 'worker');
    assert.equal(task.appEngineHttpRequest?.appEngineRouting?.version, 'v2');
    assert.equal(task.appEngineHttpRequest?.appEngineRouting?.host, `v2.worker.${PROJECT}.appspot.com`);
    assert.equal(task.dispatchDeadline ?? null, null, 'App Engine: unset means the service default');

    const [updated] = await ctx.client.updateQueue({
      queue: { name: q.name, appEngineRoutingOverride: { service: 'override' } },
      updateMask: { paths: ['app_engine_routing_override'] },
    });
    assert.equal(updated.appEngineRoutingOverride?.service, 'override');
    assert.equal(updated.appEngineRoutingOverride?.host, `override.${PROJECT}.appspot.com`);
    const [read] = await ctx.client.getTask({ name: task.name });
    assert.equal(read.appEngineHttpRequest?.appEngineRouting?.service, 'override');
    assert.equal(read.appEngineHttpRequest?.appEngineRouting?.version, '');
  });

  it('keeps a Content-Type given, and sends no body for GET', async () => {
    const q = await queue();
    await ctx.client.createTask({
      parent: q.name,
      task: { appEngineHttpRequest: { relativeUri: '/json', body: Buffer.from('{}'), headers: { 'Content-Type': 'application/json' } } },
    });
    await ctx.client.createTask({ parent: q.name, task: { appEngineHttpRequest: { relativeUri: '/get', httpMethod: 'GET' } } });
    const requests = await ctx.target.waitForRequests(2);
    const json = requests.find((r) => r.url === '/json')!;
    const get = requests.find((r) => r.url === '/get')!;
    assert.equal(json.headers['content-type'], 'application/json');
    assert.equal(get.method, 'GET');
    assert.equal(get.body.length, 0);
    assert.equal(get.headers['content-type'], undefined);
  });

  it('sends retry headers on App Engine retries', async () => {
    const q = await queue({ retryConfig: { minBackoff: seconds(1), maxBackoff: seconds(1) } });
    const replies = [500, 404, 200];
    ctx.target.responder = (_request, index) => ({ status: replies[index] ?? 200 });
    await ctx.client.createTask({ parent: q.name, task: { appEngineHttpRequest: { relativeUri: '/retry' } } });
    await ctx.target.waitForRequests(1);
    await advanceUntilRequests(ctx, 3);
    const [, second, third] = ctx.target.requests;
    assert.equal(second!.headers['x-appengine-taskretrycount'], '1');
    // Recorded against Cloud Tasks: App Engine counts answered 5xx attempts as executions.
    assert.equal(second!.headers['x-appengine-taskexecutioncount'], '1', 'the 500 was answered');
    assert.equal(second!.headers['x-appengine-taskpreviousresponse'], '500');
    assert.equal(second!.headers['x-appengine-taskretryreason'], 'App Error', 'recorded value');
    assert.equal(third!.headers['x-appengine-taskretrycount'], '2');
    assert.equal(third!.headers['x-appengine-taskexecutioncount'], '2');
    assert.equal(third!.headers['x-appengine-taskpreviousresponse'], '404');
  });

  it('fails App Engine attempts when no appEngineBaseUrl is configured', async () => {
    const bare = await startTestContext();
    try {
      const name = queuePath(uniqueQueueId());
      await bare.client.createQueue({ parent: PARENT, queue: { name } });
      const [task] = await bare.client.createTask({ parent: name, task: { appEngineHttpRequest: { relativeUri: '/x' } } });
      await bare.emulator.idle();
      const [read] = await bare.client.getTask({ name: task.name });
      assert.equal(read.dispatchCount, 1);
      assert.equal(read.lastAttempt?.responseStatus?.code, status.UNAVAILABLE);
      assert.match(read.lastAttempt?.responseStatus?.message ?? '', /appEngineBaseUrl/);
    } finally {
      await bare.close();
    }
  });
});
