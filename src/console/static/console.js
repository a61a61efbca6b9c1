// cloud-defer console: a dependency-free page over the console API (see docs/console.md).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const main = $('main'), statusEl = $('status'), updatedEl = $('updated'), liveBox = $('live'), dialog = $('confirm');
  const API = new URL('api/', document.baseURI);
  const STATUSES = ['queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'];
  const enc = encodeURIComponent;
  let session, view, timer, generation = 0, keepStatus = false;

  // Elements are built from text nodes only: task names, arguments and errors never become markup.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid !== undefined && kid !== null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  const pad = (n) => String(n).padStart(2, '0');
  const store = { get: (k) => { try { return localStorage.getItem(k); } catch { return null; } }, set: (k, v) => { try { localStorage.setItem(k, v); } catch { /* private mode */ } } };
  let utc = store.get('cd-utc') === '1';
  // The browser's zone as it names it (e.g. "CET", "GMT+1"); every time shown carries it.
  const zoneOf = (d) => ((Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName') || {}).value || 'local');
  function when(ms) {
    const d = new Date(ms);
    const [Y, M, D, hh, mm, ss] = utc
      ? [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
      : [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
    const now = new Date();
    const today = utc ? now.toISOString().slice(0, 10) === d.toISOString().slice(0, 10) : now.toDateString() === d.toDateString();
    const t = `${pad(hh)}:${pad(mm)}:${pad(ss)} ${utc ? 'UTC' : zoneOf(d)}`;
    return today ? t : `${Y}-${pad(M + 1)}-${pad(D)} ${t}`;
  }
  /** "in 40 s", "3 min ago": for times near now. */
  function relative(ms) {
    const diff = ms - Date.now(), abs = Math.abs(diff);
    const text = abs < 1500 ? 'now' : abs < 90000 ? `${Math.round(abs / 1000)} s` : abs < 5400000 ? `${Math.round(abs / 60000)} min` : abs < 129600000 ? `${Math.round(abs / 3600000)} h` : `${Math.round(abs / 86400000)} d`;
    return text === 'now' ? 'now' : diff > 0 ? `in ${text}` : `${text} ago`;
  }
  const time = (ms, rel) => (ms == null ? '—' : h('time', { datetime: new Date(ms).toISOString(), title: `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}` },
    when(ms), rel ? h('span', { class: 'rel' }, ` (${relative(ms)})`) : ''));
  const timeRel = (ms) => time(ms, true);
  const age = (ms) => (ms == null ? '—' : ms < 1000 ? `${Math.round(ms)} ms` : ms < 90000 ? `${Math.round(ms / 1000)} s` : ms < 5400000 ? `${Math.round(ms / 60000)} min` : `${(ms / 3600000).toFixed(1)} h`);
  const duration = (ms) => (ms == null ? '—' : ms < 1000 ? `${Math.round(ms)} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`);
  const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
  const badge = (s) => h('span', { class: `badge s-${s}` }, s);
  const link = (hash, text, key) => h('a', { href: hash, 'data-key': key }, text);
  const opt = (v, f) => (v == null || v === '' ? undefined : f ? f(v) : v);

  function table(caption, headers, rows, empty) {
    if (!rows.length) return h('p', { class: 'muted' }, empty);
    return h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption },
      h('table', null, h('caption', null, caption),
        h('thead', null, h('tr', null, headers.map(([label, cls]) => h('th', { scope: 'col', class: cls }, label)))),
        h('tbody', null, rows.map((cells) => h('tr', null, cells.map((c, i) => h('td', { class: headers[i][1] }, c)))))));
  }
  const fields = (pairs) => h('dl', { class: 'fields' }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  const button = (label, attrs) => h('button', { type: 'button', ...attrs }, label);

  async function api(path, method) {
    const headers = { Accept: 'application/json' };
    if (method) headers[session.csrfHeader] = session.csrfToken;
    const res = await fetch(new URL(path, API), { method: method || 'GET', headers, credentials: 'same-origin', cache: 'no-store' });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error ? body.error.message : `The server answered ${res.status}.`);
    return body;
  }

  function say(message, isError) {
    statusEl.textContent = message;
    statusEl.className = isError ? 'error' : '';
  }

  function confirmAction(title, text, okLabel) {
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
      $('confirm-cancel').focus(); // the safe choice has the focus
    });
  }

  async function act(title, text, okLabel, path, done) {
    if (!(await confirmAction(title, text, okLabel))) return;
    try {
      const before = location.hash;
      say(done(await api(path, 'POST')));
      keepStatus = location.hash !== before; // the message is about the page the action opened
    } catch (err) {
      say(err.message, true);
    }
    refreshNow();
  }

  // ---- views: { title, nav, head?, load, render } ----

  function queuesView() {
    return {
      title: 'Queues',
      nav: '#/',
      load: () => api('queues'),
      render: (data) => table(
        `Live figures, counting at most ${data.scanLimit} records per status ("+" means more).`,
        [['Queue'], ['State', 'hide-xs'], ['Pending', 'num'], ['Running', 'num hide-sm'], ['Run last min', 'num hide-sm'], ['Failed last hour', 'num'], ['Oldest ETA', 'hide-sm'],
          ['In Cloud Tasks', 'num hide-sm'], ['Rate', 'hide-sm'], ['Retry', 'hide-sm'], ['Actions', 'acts']],
        data.queues.map((q) => {
          const f = q.figures || {}, more = f.approximate ? '+' : '', r = q.rateLimits || {}, rc = q.retryConfig || {};
          const queuePath = `queues/${enc(q.name)}`;
          return [
            link(`#/tasks?queue=${enc(q.name)}`, q.name, `q:${q.name}`),
            badge(q.state),
            `${f.pending}${more}`, `${f.running}${more}`, `${f.executedLastMinute}${more}`, `${f.failedLastHour}${more}`,
            timeRel(f.oldestEta), String(f.inCloudTasks),
            `${r.maxDispatchesPerSecond ?? '—'}/s, ${r.maxConcurrentDispatches ?? '—'} at once`,
            `${rc.maxAttempts ?? '—'} attempts, backoff ${rc.minBackoffSeconds ?? '—'}–${rc.maxBackoffSeconds ?? '—'} s`,
            h('div', { class: 'actions' },
              link(`#/queue/${enc(q.name)}`, 'Charts', `c:${q.name}`),
              q.paused
                ? button('Resume', { 'aria-label': `Resume queue ${q.name}`, 'data-key': `resume:${q.name}`,
                  onclick: () => act(`Resume queue ${q.name}?`, 'Cloud Tasks starts dispatching its tasks again.', 'Resume', `${queuePath}/resume`, () => `Queue ${q.name} resumed.`) })
                : button('Pause', { 'aria-label': `Pause queue ${q.name}`, 'data-key': `pause:${q.name}`,
                  onclick: () => act(`Pause queue ${q.name}?`, 'It keeps accepting tasks but dispatches none until resumed.', 'Pause', `${queuePath}/pause`, () => `Queue ${q.name} paused.`) }),
              button('Purge', { class: 'danger', 'aria-label': `Purge queue ${q.name}`, 'data-key': `purge:${q.name}`,
                onclick: () => act(`Purge queue ${q.name}?`, 'Every task waiting in it is dropped and marked cancelled. This cannot be undone.', 'Purge',
                  `${queuePath}/purge`, (res) => `Queue ${q.name} purged: ${res.marked} task(s) cancelled.`) })),
          ];
        }),
        'No queues yet.'),
    };
  }

  function tasksView(params) {
    const filters = {};
    for (const k of ['queue', 'status', 'taskName', 'reference', 'q', 'args', 'internal']) filters[k] = params.get(k) || '';
    const cursors = ['']; // the cursor of every page seen so far; the last one is shown
    return {
      title: 'Tasks',
      nav: '#/tasks',
      head() {
        const queueSelect = h('select', { name: 'queue' }, h('option', { value: '' }, 'All queues'),
          filters.queue && h('option', { value: filters.queue, selected: true }, filters.queue));
        api('queues?figures=0').then((d) => {
          for (const q of d.queues) if (q.name !== filters.queue) queueSelect.append(h('option', { value: q.name }, q.name));
        }, () => {});
        const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter tasks', onsubmit: (e) => {
          e.preventDefault();
          const q = new URLSearchParams();
          for (const [k, v] of new FormData(form)) if (v) q.set(k, String(v));
          const hash = `#/tasks${String(q) ? `?${q}` : ''}`;
          if (location.hash === hash) show(false); else location.hash = hash;
        } },
        h('label', null, 'Queue', queueSelect),
        h('label', null, 'Status', h('select', { name: 'status' }, h('option', { value: '' }, 'Any status'),
          STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, s)))),
        h('label', null, 'Task name', h('input', { name: 'taskName', value: filters.taskName, autocomplete: 'off' })),
        h('label', null, 'Reference', h('input', { name: 'reference', value: filters.reference, autocomplete: 'off' })),
        h('label', null, 'Find id, reference or Cloud Task name', h('input', { name: 'q', value: filters.q, autocomplete: 'off', type: 'search' })),
        h('label', null, 'Argument text', h('input', { name: 'args', value: filters.args, autocomplete: 'off', type: 'search' })),
        h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'internal', value: '1', checked: filters.internal === '1' }), 'Show internal tasks'),
        h('button', { type: 'submit' }, 'Apply'));
        const scope = () => {
          const q = new URLSearchParams();
          for (const k of ['queue', 'taskName']) if (filters[k]) q.set(k, filters[k]);
          return q;
        };
        const where = `${filters.queue ? `queue ${filters.queue}` : 'every queue'}${filters.taskName ? `, task ${filters.taskName}` : ''}`;
        const bulk = (label, action, title, text, status) => button(label, { class: action === 'rerun-failed' ? '' : 'danger', 'data-key': `bulk:${action}`,
          onclick: () => {
            const q = scope();
            if (status) q.set('status', status);
            act(title, `${text} (${where}; at most 100 at a time).`, label, `bulk/${action}?${q}`,
              (res) => `${label}: ${res.done} done${res.skipped ? `, ${res.skipped} skipped` : ''}${res.more ? '; more match, run it again' : ''}.`);
          } });
        const finished = ['succeeded', 'failed', 'cancelled'].includes(filters.status) ? filters.status : '';
        return h('div', null, form, h('div', { class: 'actions bulk', role: 'group', 'aria-label': 'Bulk actions on this filter' },
          bulk('Rerun all failed', 'rerun-failed', 'Rerun every failed task?', 'Each failed task is deferred again with the same arguments'),
          bulk('Cancel all pending', 'cancel-pending', 'Cancel every pending task?', 'Queued and retrying tasks are acknowledged without running'),
          bulk('Delete finished records', 'delete-finished', `Delete ${finished || 'finished'} records?`, `The ${finished || 'succeeded, failed and cancelled'} records are forgotten. This cannot be undone`, finished)));
      },
      load() {
        const q = new URLSearchParams();
        for (const k of ['status', 'taskName', 'reference', 'q', 'args', 'internal']) if (filters[k]) q.set(k, filters[k]);
        if (cursors[cursors.length - 1]) q.set('cursor', cursors[cursors.length - 1]);
        return api(filters.queue ? `queues/${enc(filters.queue)}/tasks?${q}` : `tasks?${q}`);
      },
      render: (data) => h('div', null,
        table('Newest first', [['Task'], ['Status'], ['Queue', 'hide-sm'], ['Created'], ['ETA', 'hide-sm'], ['Attempts', 'num'], ['Duration', 'num hide-sm'],
          ['Reference', 'hide-sm'], ['Last error', 'err']],
        data.tasks.map((t) => [
          [link(`#/task/${enc(t.id)}`, t.taskName, `t:${t.id}`), h('small', { class: 'muted id' }, t.id)],
          badge(t.status), t.queue, time(t.createdAt), timeRel(t.eta), String(t.attempts), duration(t.durationMs), t.reference || '—', t.error || '',
        ]), 'No tasks match.'),
        data.hiddenInternal ? h('p', { class: 'muted' }, `${data.hiddenInternal} internal task(s) of iterations hidden; tick "Show internal tasks" to list them.`) : '',
        data.search ? h('p', { class: 'muted' }, `Searched the arguments of the newest ${data.search.scanned} record(s)${data.search.complete ? ' (all of them)' : ` (not all: the search is bounded to ${session.scanLimit})`}; large arguments kept in the payload store are not searched.`) : '',
        h('nav', { class: 'pager', 'aria-label': 'Pages' },
          button('Newer', { 'data-key': 'newer', disabled: cursors.length === 1, onclick: () => { cursors.pop(); refreshNow(); } }),
          h('span', { class: 'muted' }, `Page ${cursors.length}`),
          button('Older', { 'data-key': 'older', disabled: !data.nextCursor, onclick: () => { cursors.push(data.nextCursor); refreshNow(); } }))),
    };
  }

  function taskView(id) {
    return {
      title: `Task ${id}`,
      nav: '#/tasks',
      load: () => api(`tasks/${enc(id)}`),
      render({ task: t }) {
        const e = t.lastError, a = t.args;
        return h('div', null,
          h('p', null, badge(t.status), ' ', h('strong', null, t.taskName), ` on queue ${t.queue}`),
          h('div', { class: 'actions' },
            t.canRerun && button('Rerun', { 'data-key': 'rerun', onclick: () => act(`Rerun ${t.taskName}?`,
              `A new task is deferred with the same arguments${t.reference ? ` and reference ${t.reference}` : ''}.`, 'Rerun', `tasks/${enc(t.id)}/rerun`,
              (res) => { location.hash = `#/task/${enc(res.task.id)}`; return `Rerun deferred as task ${res.task.id}.`; }) }),
            t.canRunNow && button('Run now', { 'data-key': 'run', onclick: () => act(`Run ${t.taskName} now?`,
              'Cloud Tasks dispatches it at once (RunTask), even on a paused queue or during a backoff.', 'Run now', `tasks/${enc(t.id)}/run`, () => 'Dispatched now.') }),
            t.canCancel && button('Cancel task', { class: 'danger', 'data-key': 'cancel', onclick: () => act(`Cancel ${t.taskName}?`,
              'It will be acknowledged without running when Cloud Tasks delivers it.', 'Cancel task', `tasks/${enc(t.id)}/cancel`, () => 'Task cancelled.') })),
          fields([
            ['ID', t.id], ['Status', badge(t.status)], ['Task', t.taskName], ['Queue', link(`#/tasks?queue=${enc(t.queue)}`, t.queue)],
            ['Reference', opt(t.reference)], ['Unique until', opt(t.uniqueUntil, time)],
            ['Created', timeRel(t.createdAt)], ['ETA', timeRel(t.eta)],
            ['Next attempt', t.cloudTask && t.cloudTask.scheduleTime != null ? h('span', { id: 'next-attempt' }, timeRel(t.cloudTask.scheduleTime), ` · Cloud Tasks has dispatched it ${t.cloudTask.dispatchCount} time(s)`) : undefined], ['Started', opt(t.startedAt, time)], ['Finished', opt(t.finishedAt, timeRel)],
            ['Duration', opt(t.durationMs, duration)], ['Waited after ETA', t.startedAt ? duration(Math.max(0, t.startedAt - t.eta)) : undefined],
            ['Attempts', t.interruptedRuns
              ? `${t.attempts}, ${t.interruptedRuns} of them cut short by their instance${t.maxAttempts > 0 ? ` (at most ${t.maxAttempts} counted; up to ${t.maxAttempts - 1} cut-short runs are not)` : ''}`
              : `${t.attempts}${t.maxAttempts ? ` of at most ${t.maxAttempts}` : ''}`], ['Execution count', String(t.executionCount)],
            ['Payload', `${t.payloadSize} bytes${t.payloadStored ? ' (in the payload store)' : ''}`], ['Cloud Tasks name', opt(t.cloudTaskName)],
            ['Iteration', opt(t.iterationId, (i) => [link(`#/iteration/${enc(i)}`, i), t.shardIndex != null ? `, shard ${t.shardIndex}` : ''])],
            ['Lease until', opt(t.leaseUntil, time)], ['Kept until', time(t.expiresAt)],
          ]),
          h('h3', null, 'Arguments'),
          a.available
            ? [h('pre', { tabindex: 0, 'aria-label': 'Arguments as JSON' }, a.json),
              a.truncated && h('p', { class: 'muted' }, `Showing the first ${kib(a.limitBytes)} of ${kib(a.bytes)}.`), a.note && h('p', { class: 'muted' }, a.note)]
            : h('p', { class: 'muted' }, a.reason),
          e && [h('h3', null, 'Last error'),
            h('p', { class: 'error-text', id: 'last-error' }, [e.name, e.code].filter(Boolean).join(' · '), e.name || e.code ? ': ' : '', e.message),
            e.stack && h('pre', { tabindex: 0, 'aria-label': 'Stack trace' }, e.stack)],
          h('h3', null, 'Attempts'),
          table('Oldest first', [['#', 'num'], ['Started'], ['Outcome'], ['HTTP', 'num'], ['Duration', 'num'], ['Error', 'err']],
            t.history.map((at, i) => [String(i + 1), time(at.at), badge(at.outcome), String(at.statusCode), duration(at.durationMs), at.error ? at.error.message : '']),
            'Not run yet.'));
      },
    };
  }

  // ---- charts: inline SVG (no library, no CDN); colours come from the style sheet ----
  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
    for (const kid of kids.flat(Infinity)) if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
    return el;
  }
  const KINDS = [['succeeded', 'bar-ok'], ['retrying', 'bar-retry'], ['failed', 'bar-fail']];
  function chart(title, series, stepLabel) {
    const W = 720, H = 160, top = 14, bottom = 22, left = 34, n = series.length;
    const max = Math.max(1, ...series.map((p) => p.succeeded + p.retrying + p.failed));
    const bw = (W - left) / n, scale = (H - top - bottom) / max;
    const total = (k) => series.reduce((a, p) => a + p[k], 0);
    const label = `${title}: ${total('succeeded')} succeeded, ${total('retrying')} retried, ${total('failed')} failed; at most ${max} a ${stepLabel}`;
    const bars = series.map((p, i) => {
      let y = H - bottom;
      const rects = KINDS.map(([k, cls]) => {
        const hgt = p[k] * scale;
        y -= hgt;
        return p[k] ? svg('rect', { class: cls, x: (left + i * bw + 0.5).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: hgt.toFixed(1), 'data-kind': k, 'data-count': p[k] }) : null;
      });
      return svg('g', null, svg('title', null, `${when(p.start)}: ${p.succeeded} succeeded, ${p.retrying} retried, ${p.failed} failed`), rects);
    });
    const tick = (x, text, anchor) => svg('text', { x, y: H - 6, 'text-anchor': anchor, class: 'axis' }, text);
    return h('figure', { class: 'chart' },
      svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'none', class: 'chart-svg' },
        svg('line', { x1: left, x2: W, y1: H - bottom, y2: H - bottom, class: 'axis-line' }),
        svg('text', { x: left - 4, y: top + 4, 'text-anchor': 'end', class: 'axis' }, String(max)),
        svg('text', { x: left - 4, y: H - bottom, 'text-anchor': 'end', class: 'axis' }, '0'),
        bars,
        tick(left, when(series[0].start), 'start'), tick(W, 'now', 'end')),
      h('figcaption', null, title, ' ', h('span', { class: 'legend' }, KINDS.map(([k, cls]) => h('span', { class: `key ${cls}` }, k)))));
  }

  function queueChartsView(name) {
    return {
      title: `Queue ${name}`,
      nav: '#/',
      load: () => api(`queues/${enc(name)}/stats`),
      render: ({ stats: st }) => {
        const more = st.approximate ? '+' : '';
        const row = (w, label) => [label, h('span', { id: `${w.window}-runs` }, `${w.totals.runs}${more}`), h('span', { id: `${w.window}-failures` }, `${w.totals.failures}${more}`),
          h('span', { id: `${w.window}-retries` }, `${w.totals.retries}${more}`), duration(w.totals.p50Ms), duration(w.totals.p95Ms)];
        return h('div', null,
          h('p', { class: 'muted' }, st.source === 'counters'
            ? 'From the per-minute counters kept in the state store.'
            : `This store keeps no counters: figures rebuilt from at most ${session.scanLimit} records per status${st.approximate ? ' (the bound was reached: lower bounds)' : ''}.`),
          table('Totals (runs are attempts; p50/p95 are bucket upper bounds)', [['Window'], ['Runs', 'num'], ['Failures', 'num'], ['Retries', 'num'], ['p50', 'num'], ['p95', 'num']],
            [row(st.hour, 'Last hour'), row(st.day, 'Last day')], ''),
          fields([['Pending', `${st.pending}${more}`], ['Oldest pending', h('span', { id: 'oldest-pending' }, st.oldestPendingAgeMs == null ? 'none' : age(st.oldestPendingAgeMs))]]),
          h('h3', null, 'Last hour, per minute'), chart('Attempts per minute, last hour', st.hour.series, 'minute'),
          h('h3', null, 'Last day, per hour'), chart('Attempts per hour, last day', st.day.series, 'hour'));
      },
    };
  }

  function progress(label, percent, text) {
    return [h('progress', { max: 100, value: percent == null ? undefined : percent, 'aria-label': label }), h('span', null, text)];
  }

  function iterationsView() {
    return {
      title: 'Iterations',
      nav: '#/iterations',
      load: () => api('iterations'),
      render: (d) => table('Newest first', [['Iteration'], ['Callback', 'hide-sm'], ['Status'], ['Progress'], ['Items', 'num'], ['Errors', 'num hide-sm'], ['Created', 'hide-sm']],
        d.iterations.map((it) => [
          link(`#/iteration/${enc(it.id)}`, it.id, `i:${it.id}`), it.callbackTask, badge(it.status),
          progress(`Progress of ${it.id}`, it.percent, `${it.percent}% · ${it.shardsDone}/${it.shardCount} shards`),
          String(it.processed), String(it.errors), time(it.createdAt),
        ]),
        'No iterations are kept. (deferIteration with deleteMarker: false keeps them listed after they finish.)'),
    };
  }

  function iterationView(id) {
    return {
      title: `Iteration ${id}`,
      nav: '#/iterations',
      load: () => api(`iterations/${enc(id)}`),
      render: ({ iteration: it, tasks, itemTotal }) => h('div', null,
        h('p', null, badge(it.status), ' ', ...progress('Shards done', it.percent, `${it.percent}% · ${it.shardsDone}/${it.shardCount} shards · ${it.processed} items`)),
        itemTotal != null && h('p', null, ...progress('Items done', Math.min(100, Math.floor((it.processed * 100) / Math.max(1, itemTotal))),
          `${it.processed} of ${itemTotal} items (${Math.min(100, Math.floor((it.processed * 100) / Math.max(1, itemTotal)))}%)`)),
        ['splitting', 'running'].includes(it.status) && h('div', { class: 'actions' },
          button('Cancel iteration', { class: 'danger', 'data-key': 'cancel-iteration', onclick: () => act(`Cancel iteration ${it.id}?`,
            'Its waiting shards are cancelled, a running shard stops at its next item, and finalize never runs.', 'Cancel iteration',
            `iterations/${enc(it.id)}/cancel`, (res) => `Iteration cancelled (${res.cancelledTasks} waiting shard task(s) cancelled).`) })),
        fields([['Callback', it.callbackTask], ['Finalize', it.finalizeTask], ['Queue', it.queue], ['Created', time(it.createdAt)],
          ['Finished', opt(it.finishedAt, time)], ['Errors', String(it.errors)]]),
        h('h3', null, 'Shards'),
        table('One row per shard', [['Shard', 'num'], ['Progress'], ['Items', 'num'], ['Errors', 'num'], ['Last error', 'err'], ['Started', 'hide-sm'], ['Finished', 'hide-sm'], ['Actions']],
          it.shards.map((s) => [String(s.index),
            progress(`Shard ${s.index}`, s.done ? 100 : s.startedAt ? undefined : 0, s.done ? 'done' : s.startedAt ? 'running' : 'waiting'),
            String(s.processed), String(s.errors), s.lastError ? s.lastError.message : '', opt(s.startedAt, time) || '—', opt(s.finishedAt, time) || '—',
            it.status === 'running' && !s.done && s.errors > 0 ? button('Skip stuck item', { 'data-key': `skip:${s.index}`, 'aria-label': `Skip the item shard ${s.index} is stuck on`,
              onclick: () => act(`Skip the item shard ${s.index} is stuck on?`, 'The shard moves on after it; the skip is recorded on the shard.', 'Skip item',
                `iterations/${enc(it.id)}/skip?shard=${s.index}`, (res) => `Item ${res.skippedKey} skipped.`) }) : '']),
          'Not split yet.'),
        h('h3', null, 'Its tasks'),
        ['start', 'shard', 'finalize'].map((kind) => {
          const rows = (tasks || []).filter((t) => t.taskName === `cloud-defer.iteration.${kind}`);
          return rows.length ? table(`${kind === 'shard' ? 'Shard runs' : kind === 'start' ? 'Start' : 'Finalize'} (${rows.length})`, [['Task'], ['Status'], ['Shard', 'num'], ['Created'], ['Attempts', 'num'], ['Last error', 'err']],
            rows.map((t) => [link(`#/task/${enc(t.id)}`, t.id, `t:${t.id}`), badge(t.status), t.shardIndex == null ? '—' : String(t.shardIndex), time(t.createdAt), String(t.attempts), t.error || '']), '') : '';
        })),
    };
  }

  // ---- routing and live refresh ----

  function route() {
    const [path, qs] = (location.hash.replace(/^#/, '') || '/').split('?');
    const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
    if (parts[0] === 'tasks') return tasksView(new URLSearchParams(qs || ''));
    if (parts[0] === 'task' && parts[1]) return taskView(parts[1]);
    if (parts[0] === 'iterations') return iterationsView();
    if (parts[0] === 'iteration' && parts[1]) return iterationView(parts[1]);
    if (parts[0] === 'queue' && parts[1]) return queueChartsView(parts[1]);
    return queuesView();
  }

  function show(moveFocus) {
    clearTimeout(timer);
    if (!keepStatus) say('');
    keepStatus = false;
    const g = ++generation;
    view = route();
    document.title = `${view.title} · cloud-defer console`;
    for (const a of document.querySelectorAll('.bar nav a')) {
      if (a.getAttribute('href') === view.nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const heading = h('h2', { tabindex: -1 }, view.title);
    view.region = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    main.replaceChildren(heading, view.head ? view.head() : '', view.region);
    if (moveFocus) heading.focus();
    refresh(g);
  }

  /** Replaces a region, keeping the keyboard focus on the "same" control when it is still there. */
  function swap(region, content) {
    const active = document.activeElement;
    const key = active && region.contains(active) ? active.getAttribute('data-key') : null;
    region.replaceChildren(content);
    const again = key && region.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }

  async function refresh(g) {
    try {
      const data = await view.load();
      if (g !== generation) return;
      const text = JSON.stringify(data);
      if (text !== view.last) {
        view.last = text;
        swap(view.region, view.render(data));
        updatedEl.textContent = `Updated ${when(Date.now())}`;
      }
    } catch (err) {
      if (g !== generation) return;
      if (!view.last) swap(view.region, h('p', { class: 'error-text' }, err.message));
      say(`Refresh failed: ${err.message}`, true);
    }
    schedule(g);
  }

  function schedule(g) {
    clearTimeout(timer);
    if (!liveBox.checked || g !== generation) return;
    timer = setTimeout(() => (dialog.open || document.hidden ? schedule(g) : refresh(g)), session.pollIntervalMs);
  }

  function refreshNow() {
    view.last = undefined;
    refresh(generation);
  }

  async function start() {
    try {
      session = await api('session');
    } catch (err) {
      main.replaceChildren(h('p', { class: 'error-text' }, `The console is not available: ${err.message}`));
      return;
    }
    $('who').textContent = `Signed in as ${session.principal}`;
    liveBox.addEventListener('change', () => (liveBox.checked ? refreshNow() : clearTimeout(timer)));
    $('refresh').addEventListener('click', refreshNow);
    const utcBox = $('utc');
    utcBox.checked = utc;
    utcBox.addEventListener('change', () => { utc = utcBox.checked; store.set('cd-utc', utc ? '1' : '0'); refreshNow(); });
    const theme = $('theme');
    const applyTheme = (v) => { if (v === 'auto') document.documentElement.removeAttribute('data-theme'); else document.documentElement.setAttribute('data-theme', v); };
    theme.value = store.get('cd-theme') || 'auto';
    applyTheme(theme.value);
    theme.addEventListener('change', () => { store.set('cd-theme', theme.value); applyTheme(theme.value); });
    window.addEventListener('hashchange', () => show(true));
    show(false);
  }
  start();
})();
