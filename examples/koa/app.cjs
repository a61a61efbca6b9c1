// cloud-defer with Koa and @koa/router: `npm run demo:koa`.
// With no Google configuration it runs on the embedded Cloud Tasks emulator, in this process.
const Koa = require('koa');
const Router = require('@koa/router');
const { createDeferred, currentTask } = require('cloud-defer');
const { koaDeferredMiddleware } = require('cloud-defer/koa');

const deferred = createDeferred();

const resizeImage = deferred.task('resizeImage', async (imageId, sizes) => {
  const task = currentTask();
  console.log(`resizing ${imageId} to ${sizes.join(', ')} - task ${task.id}, attempt ${task.attempt + 1}`); // attempt counts from 1
});

const app = new Koa();
const tasks = koaDeferredMiddleware(deferred);
app.use(tasks.routes()).use(tasks.allowedMethods());

const router = new Router();
router.post('/images/:id', async (ctx) => {
  const info = await resizeImage.defer(ctx.params.id, [64, 256, 1024]);
  ctx.status = 202;
  ctx.body = { taskId: info.id };
});
router.get('/tasks/:id', async (ctx) => {
  ctx.body = (await deferred.getTask(ctx.params.id)) ?? { error: 'unknown task' };
});
app.use(router.routes()).use(router.allowedMethods());

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', async () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  // Locally the emulator delivers to this process; tell it the port if the OS picked one.
  if (deferred.mode === 'embedded') deferred.setTargetUrl(`${base}${deferred.handlerPath}`);
  console.log(`example app listening on ${base}  (try: curl -XPOST ${base}/images/42)`);
  if (deferred.consoleHandler) console.log(`console: ${base}${deferred.consoleHandler.path}/`);
  console.log('Ctrl-C to stop');
  if (process.env.DEMO_TASK !== '0') {
    const info = await resizeImage.defer('demo-image', [64]);
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
