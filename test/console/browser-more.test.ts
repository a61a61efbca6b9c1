/**
 * The console's newer features in a real headless Chromium (playwright-core, no downloaded
 * browser), used as a person would: time zones, Run now on a retrying task, bulk rerun, hidden
 * internal tasks, cancel and skip in iterations, charts checked against the API, dark mode, a
 * 390 px phone, the keyboard, and the page's weight. Screenshots go to test/artifacts/;
 * UPDATE_SCREENSHOTS=1 also refreshes docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { DeferredTask } from '../../src/index.js';
import { eventually, startApp, type TestApp } from '../helpers/app.js';
import { CONSOLE, signIn } from './helpers.js';
import { CONTRAST_FAILURES, FOCUS, statusIs, viewShows } from './page-scripts.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ROOT = path.resolve(__dirname, '../../..');
const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const DOC_SHOTS = path.join(ROOT, 'docs/screenshots');
const LIVE_TIMEOUT = 15_000;

describe('console in a real browser: zones, Run now, bulk, internal tasks, iterations, charts, dark mode, phone', function () {
  this.timeout(180_000);
  let app: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let stuckFails = true;
  let boomFails = true;
  let hold: Promise<void> = Promise.resolve();
  let finalized = 0;
  const visited: string[] = [];
  let visit: DeferredTask<[string]>;
  let wrapUp: DeferredTask<[]>;
  const pageErrors: string[] = [];

  const shoot = async (name: string, docName?: string): Promise<void> => {
    const file = path.join(ARTIFACTS, `console-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    if (docName && process.env.UPDATE_SCREENSHOTS === '1') copyFileSync(file, path.join(DOC_SHOTS, `${docName}.png`));
  };
  /** Polls an expression in the page (waitForFunction would eval(), which the page's CSP forbids). */
  const until = async (expression: string, what: string, timeoutMs = LIVE_TIMEOUT): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await page.evaluate(expression))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const openView = async (hash: string, title: string): Promise<void> => {
    await page.goto(`${app.baseUrl}${CONSOLE}/${hash}`);
    await until(viewShows(title), `the ${title} view`);
  };
  const confirm = async (button: string): Promise<void> => {
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: button }).click();
    await dialog.waitFor({ state: 'hidden' });
  };

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}; install it (apt-get install -y chromium) or set CHROMIUM_PATH.`);
    mkdirSync(ARTIFACTS, { recursive: true });
    if (process.env.UPDATE_SCREENSHOTS === '1') mkdirSync(DOC_SHOTS, { recursive: true });
    app = await startApp(
      'express',
      {
        queues: [
          { name: 'slow', retryConfig: { minBackoffSeconds: 120, maxBackoffSeconds: 120 } },
          { name: 'bulk' },
          { name: 'stat' },
          { name: 'chart' },
          { name: 'walk' },
          { name: 'poison', retryConfig: { minBackoffSeconds: 1, maxBackoffSeconds: 2 } },
        ],
      },
      (deferred) => {
        deferred.task('syncInvoice', (id: string) => {
          if (stuckFails) throw new Error(`ledger unavailable for ${id}`);
        });
        deferred.task(
          'chargeCard',
          (order: number) => {
            if (boomFails) throw new Error(`card declined for order ${order}`);
          },
          { maxAttempts: 1 },
        );
        deferred.task('work', async (ms: number) => {
          await new Promise((r) => setTimeout(r, ms));
        });
        deferred.task('remind', (_who: string) => undefined);
        visit = deferred.task('indexDocument', async (item: string) => {
          if (item.startsWith('poison')) throw new Error(`cannot parse ${item}`);
          if (item === 'doc-1') await hold;
          visited.push(item);
        });
        wrapUp = deferred.task('publishIndex', () => {
          finalized += 1;
        });
      },
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    // A browser in Paris: the console must say which zone its times are in.
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'Europe/Paris', locale: 'en-GB' });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('shows every time with its zone, UTC on hover and with a toggle, and relative times', async () => {
    const later = await app.deferred.defer('remind', ['ada'], { queue: 'stat', countdown: 3600 });
    await openView(`#/task/${later.id}`, `Task ${later.id}`);
    const eta = page.locator('dd time').nth(1);
    const text = (await eta.textContent()) ?? '';
    assert.match(text, /^\d\d:\d\d:\d\d (CET|CEST|GMT\+1|GMT\+2) \(in (59|60) min\)$/, text);
    assert.match((await eta.getAttribute('title')) ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    await page.getByLabel('UTC').check();
    await until(`document.querySelectorAll('dd time')[1]?.textContent.includes(' UTC ')`, 'times in UTC');
    const utcText = (await page.locator('dd time').nth(1).textContent()) ?? '';
    const utcHour = new Date(later.eta).getUTCHours();
    assert.equal(/(\d\d):\d\d:\d\d UTC/.exec(utcText)?.[1], String(utcHour).padStart(2, '0'), `${utcText} is in UTC`);
    await shoot('zones', 'zones');
    await page.getByLabel('UTC').uncheck();
    await app.deferred.cancel(later.id);
  });

  it('a retrying task shows its next attempt and Run now, from the keyboard; it then runs', async () => {
    stuckFails = true;
    const info = await app.deferred.defer('syncInvoice', ['inv-42'], { queue: 'slow' });
    await eventually(async () => (await app.deferred.getTask(info.id))?.status === 'retrying', 'the task to retry');
    await openView(`#/task/${info.id}`, `Task ${info.id}`);
    await page.locator('#next-attempt').waitFor();
    assert.match((await page.locator('#next-attempt').textContent()) ?? '', /\(in (1|2) min\)/);
    await shoot('retrying-task', 'retrying-task');
    stuckFails = false;
    let focus = { text: '' };
    for (let i = 0; i < 40 && focus.text !== 'Run now'; i += 1) {
      await page.keyboard.press('Tab');
      focus = (await page.evaluate(FOCUS)) as { text: string };
    }
    assert.equal(focus.text, 'Run now', 'Run now is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Tab'); // from "Go back" to the confirm button
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Dispatched now.' }).waitFor();
    await until(statusIs('succeeded'), 'the task to succeed after Run now');
    assert.equal((await app.deferred.getTask(info.id))?.attempts, 2);
    assert.match((await page.locator('tbody').last().textContent()) ?? '', /^1.*2/s, 'attempts numbered from 1');
  });

  it('reruns 20 failed tasks with one confirmed bulk action', async () => {
    boomFails = true;
    const failed = await Promise.all(Array.from({ length: 20 }, (_, i) => app.deferred.defer('chargeCard', [i], { queue: 'bulk' })));
    for (const f of failed) assert.equal((await f.wait()).status, 'failed');
    boomFails = false;
    await openView('#/tasks?queue=bulk&status=failed', 'Tasks');
    await page.getByRole('button', { name: 'Rerun all failed' }).click();
    assert.match((await page.locator('#confirm-text').textContent()) ?? '', /queue bulk/);
    await shoot('bulk-confirm', 'bulk-confirm');
    await confirm('Rerun all failed');
    await page.getByRole('status').filter({ hasText: 'Rerun all failed: 20 done.' }).waitFor();
    await app.deferred.drain();
    assert.equal((await app.deferred.listTasks({ queue: 'bulk', status: 'succeeded', limit: 100 })).records.length, 20);
  });

  it('hides internal tasks by default and shows them on request; an iteration groups them', async () => {
    const it = await app.deferred.deferIteration(['a', 'b', 'c', 'd'], visit, wrapUp, { shards: 2, queue: 'walk', deleteMarker: false });
    await it.wait({ timeoutMs: 20_000 });
    await page.goto(`${app.baseUrl}${CONSOLE}/#/tasks?queue=walk`);
    await page.getByText(/internal task\(s\) of iterations hidden/).waitFor();
    assert.equal(await page.locator('tbody tr').count(), 0, "no row of the iteration's own tasks");
    await page.getByLabel('Show internal tasks').check();
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('link', { name: 'cloud-defer.iteration.finalize' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'cloud-defer.iteration.shard' }).count(), 2);
    await shoot('internal-tasks', 'internal-tasks');
    await openView(`#/iteration/${it.id}`, `Iteration ${it.id}`);
    await page.getByRole('table', { name: /Shard runs \(2\)/ }).waitFor();
    await page.getByRole('table', { name: /Finalize \(1\)/ }).waitFor();
  });

  it('cancels an iteration from its page: the shard stops at its next item, finalize never runs', async () => {
    visited.length = 0;
    finalized = 0;
    let release: () => void = () => {};
    hold = new Promise<void>((r) => (release = r));
    const it = await app.deferred.deferIteration(['doc-0', 'doc-1', 'doc-2', 'doc-3'], visit, wrapUp, { shards: 1, queue: 'walk', deleteMarker: false });
    await eventually(() => visited.length === 1, 'the first document indexed');
    await openView(`#/iteration/${it.id}`, `Iteration ${it.id}`);
    await page.getByRole('button', { name: 'Cancel iteration' }).click();
    await confirm('Cancel iteration');
    await page.getByRole('status').filter({ hasText: 'Iteration cancelled' }).waitFor();
    await new Promise((r) => setTimeout(r, 500)); // longer than the shard's 200 ms between looks
    release();
    await until(`document.querySelector('main p .badge')?.textContent === 'cancelled'`, 'the iteration shown cancelled');
    await app.deferred.drain();
    assert.deepEqual(visited, ['doc-0', 'doc-1']);
    assert.equal(finalized, 0);
    assert.equal(await page.getByRole('button', { name: 'Cancel iteration' }).count(), 0);
  });

  it('skips a poison item a shard is stuck on; finalize then runs once; progress by items and shards', async () => {
    visited.length = 0;
    finalized = 0;
    const items = ['doc-a', 'poison-b', 'doc-c', 'doc-d', 'doc-e', 'doc-f'];
    const it = await app.deferred.deferIteration(items, visit, wrapUp, { shards: 2, queue: 'poison', deleteMarker: false, retryCountdown: 1 });
    await eventually(async () => ((await app.deferred.getIteration(it.id))?.shards[0]?.errors ?? 0) >= 1, 'shard 0 stuck on the poison item', 20_000);
    await openView(`#/iteration/${it.id}`, `Iteration ${it.id}`);
    const skip = page.getByRole('button', { name: 'Skip the item shard 0 is stuck on' });
    await skip.waitFor({ timeout: LIVE_TIMEOUT });
    await shoot('iteration-stuck', 'iteration-stuck');
    // The shard may be between retries or mid-run; a skip is accepted only while it waits.
    await eventually(
      async () => {
        await page.evaluate(`document.getElementById('status').textContent = ''`);
        await skip.click();
        await confirm('Skip item');
        await until(`document.getElementById('status').textContent !== ''`, 'the answer to the skip');
        const status = (await page.getByRole('status').textContent()) ?? '';
        return status.includes('skipped') ? status : undefined;
      },
      'a skip while the shard waits',
      20_000,
    );
    await it.wait({ timeoutMs: 20_000 });
    await app.deferred.drain();
    assert.equal(finalized, 1, 'finalize ran once');
    assert.deepEqual([...visited].sort(), ['doc-a', 'doc-c', 'doc-d', 'doc-e', 'doc-f']);
    await until(`document.querySelector('main p .badge')?.textContent === 'succeeded'`, 'the iteration shown succeeded');
    assert.equal(await page.getByRole('progressbar', { name: 'Items done' }).getAttribute('value'), '83');
    assert.match((await page.locator('main').textContent()) ?? '', /5 of 6 items \(83%\)/);
    assert.match((await page.locator('main').textContent()) ?? '', /Item 000000000001 skipped from the console/);
    await shoot('iteration-skipped', 'iteration-skipped');
  });

  it('draws the charts and totals of a seeded run, matching the API', async () => {
    for (const ms of [2, 20, 200, 20, 2]) await (await app.deferred.defer('work', [ms], { queue: 'chart' })).wait();
    boomFails = true;
    for (const n of [1, 2, 3]) await (await app.deferred.defer('chargeCard', [n], { queue: 'chart' })).wait();
    await app.deferred.defer('remind', ['later'], { queue: 'chart', countdown: 600 });
    const client = await signIn(app.baseUrl);
    const { stats } = (await client.get('/queues/chart/stats').expect(200)).body as {
      stats: {
        hour: { totals: { runs: number; failures: number; retries: number }; series: Array<{ succeeded: number; failed: number }> };
        day: { totals: { runs: number } };
      };
    };
    assert.equal(stats.hour.totals.runs, 8);
    assert.equal(stats.hour.totals.failures, 3);
    await openView('#/', 'Queues');
    await page.locator('a[data-key="c:chart"]').click();
    await until(viewShows('Queue chart'), 'the chart queue view');
    assert.equal(await page.locator('#hour-runs').textContent(), String(stats.hour.totals.runs));
    assert.equal(await page.locator('#hour-failures').textContent(), String(stats.hour.totals.failures));
    assert.equal(await page.locator('#day-runs').textContent(), String(stats.day.totals.runs));
    const drawn = (await page.evaluate(`(() => {
      const svg = document.querySelectorAll('svg.chart-svg')[0];
      const sum = (kind) => [...svg.querySelectorAll('rect[data-kind=' + kind + ']')].reduce((n, r) => n + Number(r.getAttribute('data-count')), 0);
      return { succeeded: sum('succeeded'), failed: sum('failed'), label: svg.getAttribute('aria-label') };
    })()`)) as { succeeded: number; failed: number; label: string };
    assert.equal(
      drawn.succeeded,
      stats.hour.series.reduce((n, p) => n + p.succeeded, 0),
    );
    assert.equal(drawn.failed, 3);
    assert.match(drawn.label, /5 succeeded, 0 retried, 3 failed/);
    assert.match((await page.locator('#oldest-pending').textContent()) ?? '', /^\d+ (ms|s)$/);
    await shoot('charts', 'charts');
  });

  it('has a dark mode, from the system setting and from the toggle, with AA contrast', async () => {
    const dark = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark', timezoneId: 'Europe/Paris' });
    const darkPage = await dark.newPage();
    await darkPage.goto(`${app.baseUrl}${CONSOLE}/#/`);
    await darkPage.getByRole('link', { name: 'Charts' }).first().waitFor();
    const bg = await darkPage.evaluate('getComputedStyle(document.body).backgroundColor');
    assert.equal(bg, 'rgb(17, 20, 24)', 'the system dark setting is followed');
    await dark.close();
    await openView('#/queue/chart', 'Queue chart');
    await page.getByLabel('Theme').selectOption('dark');
    assert.equal(await page.evaluate('getComputedStyle(document.body).backgroundColor'), 'rgb(17, 20, 24)');
    assert.deepEqual(await page.evaluate(CONTRAST_FAILURES), [], 'dark charts view: AA contrast');
    await shoot('dark-charts', 'dark');
    await openView('#/tasks?queue=bulk', 'Tasks');
    assert.deepEqual(await page.evaluate(CONTRAST_FAILURES), [], 'dark tasks view: AA contrast');
    await page.getByLabel('Theme').selectOption('light');
    assert.equal(await page.evaluate('getComputedStyle(document.body).backgroundColor'), 'rgb(246, 247, 249)');
  });

  it('on a 390 px screen the overview actions are on screen and usable', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await openView('#/', 'Queues');
    for (const name of ['Pause queue bulk', 'Purge queue bulk']) {
      const box = await page.getByRole('button', { name }).boundingBox();
      assert.ok(box, name);
      assert.ok(box.x >= 0 && box.x + box.width <= 390, `${name} is on screen (x ${box.x}, width ${box.width})`);
    }
    const { scrollWidth, innerWidth } = (await page.evaluate('({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })')) as {
      scrollWidth: number;
      innerWidth: number;
    };
    assert.ok(scrollWidth <= innerWidth, `no sideways scrolling (${scrollWidth} > ${innerWidth})`);
    await shoot('phone-overview', 'phone-overview');
    await page.getByRole('button', { name: 'Pause queue bulk' }).click();
    await confirm('Pause');
    await page.getByRole('status').filter({ hasText: 'Queue bulk paused.' }).waitFor();
    await page.getByRole('button', { name: 'Resume queue bulk' }).click();
    await confirm('Resume');
    await page.getByRole('status').filter({ hasText: 'Queue bulk resumed.' }).waitFor();
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('weighs under 60 KB gzipped with everything it loads, and loads nothing from elsewhere', async () => {
    const fresh = await browser.newContext();
    const probe = await fresh.newPage();
    const loaded: Array<{ url: string; bytes: number }> = [];
    probe.on('response', async (res) => {
      const body = await res.body().catch(() => Buffer.alloc(0));
      loaded.push({ url: res.url(), bytes: gzipSync(body).length });
    });
    await probe.goto(`${app.baseUrl}${CONSOLE}/#/queue/chart`);
    await probe.locator('svg.chart-svg').first().waitFor();
    await probe.waitForLoadState('networkidle');
    await fresh.close();
    const page = loaded.filter((r) => !r.url.includes('/api/'));
    assert.ok(
      page.every((r) => r.url.startsWith(app.baseUrl)),
      'everything from the app itself',
    );
    assert.deepEqual(page.map((r) => new URL(r.url).pathname.split('/').pop()).sort(), ['', 'console.css', 'console.js']);
    const total = loaded.reduce((n, r) => n + r.bytes, 0);
    assert.ok(total < 60 * 1024, `page, assets and API answers: ${total} bytes gzipped`);
    assert.deepEqual(pageErrors, [], 'no script errors or content-policy violations');
  });
});
