// cloud-defer with Express: `npm run demo` (or `node examples/express/app.cjs` after `npm run build`).
// With no Google configuration it runs on the embedded Cloud Tasks emulator, in this process.
const express = require('express');
const { createDeferred, deferredMiddleware, currentTask, PermanentTaskFailure } = require('cloud-defer');

const deferred = createDeferred({
  queues: [{ name: 'mail', rateLimits: { maxDispatchesPerSecond: 10 }, retryConfig: { maxAttempts: 5 } }],
});

// Register the function once, under a stable name; defer it from anywhere.
const sendWelcome = deferred.task('sendWelcome', async (userId, plan) => {
  const task = currentTask();
  if (!userId) throw new PermanentTaskFailure('no user id: nothing to retry');
  console.log(`sending the welcome mail to ${userId} (${plan}) - task ${task.id}, attempt ${task.attempt + 1}`); // attempt counts from 1
});

const app = express();
app.use(deferredMiddleware(deferred)); // serves POST /_ah/queue/deferred for Cloud Tasks
app.use(express.json());

app.post('/signup', async (req, res) => {
  const info = await sendWelcome.with({ queue: 'mail', countdown: 1 }).defer(req.body.userId, req.body.plan ?? 'free');
  res.status(202).json({ taskId: info.id, eta: info.eta });
});

app.get('/tasks/:id', async (req, res) => {
  res.json((await deferred.getTask(req.params.id)) ?? { error: 'unknown task' });
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', async () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  // Locally the emulator delivers to this process; tell it the port if the OS picked one.
  if (deferred.mode === 'embedded') deferred.setTargetUrl(`${base}${deferred.handlerPath}`);
  console.log(`example app listening on ${base}  (try: curl -XPOST ${base}/signup -H 'content-type: application/json' -d '{"userId":"ada"}')`);
  if (deferred.consoleHandler) console.log(`console: ${base}${deferred.consoleHandler.path}/`);
  console.log('Ctrl-C to stop');
  if (process.env.DEMO_TASK !== '0') {
    const info = await sendWelcome.defer('demo-user', 'pro');
    const record = await info.wait({ timeoutMs: 30000 });
    console.log(`demo task ${record.id} ${record.status} after ${record.attempts} attempt(s)`);
  }
});

server.on('error', (err) => {
  if (err.code !== 'EADDRINUSE') throw err;
  console.error(`port ${port} is busy: stop what uses it or start with PORT=<another port>`);
  process.exit(1);
});

const stop = () => deferred.close().finally(() => server.close(() => process.exit(0)));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
