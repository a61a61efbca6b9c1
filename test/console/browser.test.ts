/**
 * The console page in a real headless Chromium (playwright-core, no downloaded browser): an
 * example-like app on the embedded default, driven the way a developer would use it.
 * Screenshots go to test/artifacts/; UPDATE_SCREENSHOTS=1 also refreshes docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { DeferredTask } from '../../src/index.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { CONSOLE } from './helpers.js';
import { ACCESSIBILITY_PROBLEMS, CONTRAST_FAILURES, FOCUS, PAGE_WIDTH, progressIs, queueCellIs, statusIs, viewShows } from './page-scripts.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ROOT = path.resolve(__dirname, '../../..');
const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const DOC_SHOTS = path.join(ROOT, 'docs/screenshots');
const LIVE_TIMEOUT = 15_000; // the page polls every 3 s by default

describe('console in a real browser (headless Chromium)', function () {
  this.timeout(120_000);
  let app: TestApp;
  let browser: Browser;
  let page: Page;
  let declines = 1;
  let openGate: () => void = () => {};
  let gate = Promise.resolve();
  let buildReport: DeferredTask<[string]>;
  let publishReport: DeferredTask<[]>;
  const pageErrors: string[] = [];
  let failedId = '';
  const views = (): Array<[string, string]> => [
    ['#/', 'Queues'],
    ['#/tasks', 'Tasks'],
    [`#/task/${failedId}`, `Task ${failedId}`],
    ['#/iterations', 'Iterations'],
  ];

  const shoot = async (name: string, docName?: string): Promise<void> => {
    const file = path.join(ARTIFACTS, `console-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    if (docName && process.env.UPDATE_SCREENSHOTS === '1') copyFileSync(file, path.join(DOC_SHOTS, `${docName}.png`));
  };
  /**
   * Polls an expression in the page until it is true. page.evaluate goes through the DevTools
   * protocol; waitForFunction with a string would eval() in the page, which its CSP forbids.
   */
  const until = async (expression: string, what: string, timeoutMs = LIVE_TIMEOUT): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await page.evaluate(expression))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Opens a view by its hash and waits until that view (not the previous one) has rendered its data. */
  const openView = async (hash: string, title: string): Promise<void> => {
    await page.goto(`${app.baseUrl}${CONSOLE}/${hash}`);
    await until(viewShows(title), `the ${title} view`);
  };
  const badge = (scope = page.locator('main p').first()) => scope.locator('.badge').first();

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is missing at ${CHROMIUM}: the console's browser tests need it. Install it with \`apt-get install -y chromium\` (CI installs it), or set CHROMIUM_PATH.`,
      );
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    if (process.env.UPDATE_SCREENSHOTS === '1') mkdirSync(DOC_SHOTS, { recursive: true });
    // An example-like app on the embedded default: no console option, so the console is on for this machine only.
    app = await startApp(
      'express',
      { queues: [{ name: 'mail', rateLimits: { maxDispatchesPerSecond: 20 }, retryConfig: { maxAttempts: 5, minBackoffSeconds: 1 } }, { name: 'reports' }] },
      (deferred) => {
        deferred.task('sendWelcome', (_userId: string, _plan: string) => undefined);
        deferred.task(
          'chargeCard',
          (orderId: string, _cents: bigint) => {
            if (declines > 0) {
              declines -= 1;
              throw new Error(`card declined for ${orderId}`);
            }
          },
          { maxAttempts: 1 },
        );
        deferred.task('sendReminder', (_userId: string) => undefined);
        buildReport = deferred.task('buildReport', async (_row: string) => {
          await gate;
        });
        publishReport = deferred.task('publishReport', () => undefined);
      },
    );
    await (await app.deferred.defer('sendWelcome', ['ada', 'pro'], { queue: 'mail' })).wait();
    const failed = await app.deferred.defer('chargeCard', ['order-7', 1999n], { queue: 'mail' });
    failedId = failed.id;
    assert.equal((await failed.wait()).status, 'failed');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('shows the queues overview with live figures', async () => {
    await page.goto(`${app.baseUrl}${CONSOLE}`);
    assert.equal(new URL(page.url()).pathname, `${CONSOLE}/`);
    const mail = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'mail', exact: true }) });
    await mail.waitFor();
    await page.getByText('Signed in as local').waitFor();
    // Queue, State, Pending, Running, Run last min, Failed last hour
    await until(queueCellIs('mail', 5, '1'), 'one failure in the last hour on mail');
    assert.equal(await mail.locator('.badge').textContent(), 'RUNNING');
    await shoot('overview', 'overview');
  });

  it('lists a succeeded and a failed task, and filters to the failed one', async () => {
    await page.getByRole('link', { name: 'Tasks' }).click();
    const row = (name: string) => page.getByRole('row').filter({ has: page.getByRole('link', { name, exact: true }) });
    await row('sendWelcome').waitFor();
    assert.equal(await badge(row('sendWelcome')).textContent(), 'succeeded');
    assert.equal(await badge(row('chargeCard')).textContent(), 'failed');
    await page.getByLabel('Status').selectOption('failed');
    await page.getByRole('button', { name: 'Apply' }).click();
    await row('sendWelcome').waitFor({ state: 'detached' });
    await row('chargeCard').waitFor();
    assert.equal(await page.getByLabel('Status').inputValue(), 'failed');
    assert.equal(await page.locator('tbody tr').count(), 1);
    assert.match((await row('chargeCard').textContent()) ?? '', /card declined for order-7/);
    await shoot('tasks', 'tasks');
  });

  it('opens the failed task and reads its error, stack and arguments', async () => {
    await page.getByRole('link', { name: 'chargeCard', exact: true }).click();
    await page.locator('#last-error').waitFor();
    assert.match((await page.locator('#last-error').textContent()) ?? '', /Error: card declined for order-7/);
    assert.match((await page.getByLabel('Stack trace').textContent()) ?? '', /^Error: card declined for order-7\n\s+at /);
    assert.match((await page.getByLabel('Arguments as JSON').textContent()) ?? '', /"\$type": "BigInt",\s+"value": "1999"/);
    assert.equal(await badge().textContent(), 'failed');
    await shoot('task-detail', 'task-detail');
  });

  it('reruns it after a confirm dialog and sees the rerun succeed, without reloading', async () => {
    await page.evaluate('window.marker = 1');
    await page.getByRole('button', { name: 'Rerun' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.equal(await dialog.getByRole('heading').textContent(), 'Rerun chargeCard?');
    await dialog.getByRole('button', { name: 'Rerun' }).click();
    await until(`!location.hash.includes(${JSON.stringify(failedId)})`, "the rerun task's page");
    await page.getByRole('status').filter({ hasText: 'Rerun deferred as task' }).waitFor();
    await until(statusIs('succeeded'), 'the rerun to succeed');
    const newId = decodeURIComponent(new URL(page.url()).hash.replace('#/task/', ''));
    assert.equal((await app.deferred.getTask(newId))?.status, 'succeeded');
    assert.equal((await app.deferred.getTask(newId))?.taskName, 'chargeCard');
    assert.equal(await page.evaluate('window.marker'), 1, 'the page did not reload');
  });

  it('cancels a countdown task', async () => {
    const reminder = await app.deferred.defer('sendReminder', ['ada'], { queue: 'mail', countdown: 3600 });
    await page.getByRole('link', { name: 'Tasks' }).click();
    await page.getByLabel('Status').selectOption('queued');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('link', { name: 'sendReminder' }).click();
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel task' }).click();
    await until(statusIs('cancelled'), 'the task to show cancelled');
    assert.equal((await app.deferred.getTask(reminder.id))?.status, 'cancelled');
    assert.equal(await page.getByRole('button', { name: 'Cancel task' }).count(), 0, 'nothing left to cancel');
  });

  it('works from the keyboard: visible focus, Enter opens the dialog on "Go back", Escape changes nothing', async () => {
    const reminder = await app.deferred.defer('sendReminder', ['grace'], { queue: 'mail', countdown: 3600 });
    await openView(`#/task/${reminder.id}`, `Task ${reminder.id}`);
    await page.getByRole('button', { name: 'Cancel task' }).waitFor();
    type Focus = { text: string; outline: string; shadow: string };
    let focus: Focus = { text: '', outline: '', shadow: '' };
    for (let i = 0; i < 30 && focus.text !== 'Cancel task'; i += 1) {
      await page.keyboard.press('Tab');
      focus = (await page.evaluate(FOCUS)) as Focus;
    }
    assert.equal(focus.text, 'Cancel task', 'the action button is reachable with Tab');
    assert.equal(focus.outline, 'solid 3px', 'focus is visible');
    const ring = focus;
    assert.notEqual(ring.shadow, 'none');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    assert.equal(((await page.evaluate(FOCUS)) as Focus).text, 'Go back', 'the safe choice has the focus');
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    assert.equal((await app.deferred.getTask(reminder.id))?.status, 'queued');
  });

  it("watches an iteration's progress bar reach 100% through live refresh", async () => {
    gate = new Promise<void>((resolve) => (openGate = resolve));
    await page.getByRole('link', { name: 'Iterations' }).click();
    await page.getByRole('heading', { name: 'Iterations' }).waitFor();
    const items = Array.from({ length: 12 }, (_, i) => `row-${i}`);
    const iteration = await app.deferred.deferIteration(items, buildReport, publishReport, { shards: 3, deleteMarker: false, queue: 'reports' });
    const bar = page.getByRole('progressbar', { name: `Progress of ${iteration.id}` });
    await bar.waitFor({ timeout: LIVE_TIMEOUT });
    assert.ok(Number(await bar.getAttribute('value')) < 100, 'under way while the callbacks are held');
    openGate();
    await iteration.wait({ timeoutMs: 30_000 });
    await until(progressIs(`Progress of ${iteration.id}`, 100), 'the progress bar at 100%');
    const row = page.getByRole('row').filter({ has: bar });
    assert.match((await row.textContent()) ?? '', /100% · 3\/3 shards/);
    assert.match((await row.textContent()) ?? '', /succeeded/);
    await shoot('iterations', 'iterations');
    await page.getByRole('link', { name: iteration.id }).click();
    await page.getByRole('progressbar', { name: 'Shard 2' }).waitFor();
    for (const shard of [0, 1, 2]) assert.equal(await page.getByRole('progressbar', { name: `Shard ${shard}` }).getAttribute('value'), '100');
    await shoot('iteration-detail');
  });

  it('is readable at phone width (no sideways scrolling of the page)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [hash, title] of views()) {
      await openView(hash, title);
      const { scrollWidth, innerWidth } = (await page.evaluate(PAGE_WIDTH)) as { scrollWidth: number; innerWidth: number };
      assert.ok(scrollWidth <= innerWidth, `${hash}: page is ${scrollWidth}px wide in a ${innerWidth}px viewport`);
    }
    await openView('#/tasks', 'Tasks');
    await shoot('phone-tasks', 'phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('is accessible: labelled controls, real buttons and links, live regions, AA contrast, no script errors', async () => {
    for (const [hash, title] of views()) {
      await openView(hash, title);
      const problems = await page.evaluate(ACCESSIBILITY_PROBLEMS);
      assert.deepEqual(problems, [], hash);
      assert.deepEqual(await page.evaluate(CONTRAST_FAILURES), [], `${hash}: text under AA contrast`);
    }
    assert.deepEqual(pageErrors, [], 'no script errors or content-policy violations');
  });
});
