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
  function when(ms) {
    const d = new Date(ms);
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return d.toDateString() === new Date().toDateString() ? t : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
  }
  const time = (ms) => (ms == null ? '—' : h('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toISOString() }, when(ms)));
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
        [['Queue'], ['State'], ['Pending', 'num'], ['Running', 'num'], ['Run last min', 'num'], ['Failed last hour', 'num'], ['Oldest ETA'],
          ['In Cloud Tasks', 'num hide-sm'], ['Rate', 'hide-sm'], ['Retry', 'hide-sm'], ['Actions']],
        data.queues.map((q) => {
          const f = q.figures || {}, more = f.approximate ? '+' : '', r = q.rateLimits || {}, rc = q.retryConfig || {};
          const queuePath = `queues/${enc(q.name)}`;
          return [
            link(`#/tasks?queue=${enc(q.name)}`, q.name, `q:${q.name}`),
            badge(q.state),
            `${f.pending}${more}`, `${f.running}${more}`, `${f.executedLastMinute}${more}`, `${f.failedLastHour}${more}`,
            time(f.oldestEta), String(f.inCloudTasks),
            `${r.maxDispatchesPerSecond ?? '—'}/s, ${r.maxConcurrentDispatches ?? '—'} at once`,
            `${rc.maxAttempts ?? '—'} attempts, backoff ${rc.minBackoffSeconds ?? '—'}–${rc.maxBackoffSeconds ?? '—'} s`,
            h('div', { class: 'actions' },
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
    for (const k of ['queue', 'status', 'taskName', 'reference']) filters[k] = params.get(k) || '';
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
        h('button', { type: 'submit' }, 'Apply'));
        return form;
      },
      load() {
        const q = new URLSearchParams();
        for (const k of ['status', 'taskName', 'reference']) if (filters[k]) q.set(k, filters[k]);
        if (cursors[cursors.length - 1]) q.set('cursor', cursors[cursors.length - 1]);
        return api(filters.queue ? `queues/${enc(filters.queue)}/tasks?${q}` : `tasks?${q}`);
      },
      render: (data) => h('div', null,
        table('Newest first', [['Task'], ['Status'], ['Queue', 'hide-sm'], ['Created'], ['ETA', 'hide-sm'], ['Attempts', 'num'], ['Duration', 'num hide-sm'],
          ['Reference', 'hide-sm'], ['Last error', 'err']],
        data.tasks.map((t) => [
          [link(`#/task/${enc(t.id)}`, t.taskName, `t:${t.id}`), h('small', { class: 'muted id' }, t.id)],
          badge(t.status), t.queue, time(t.createdAt), time(t.eta), String(t.attempts), duration(t.durationMs), t.reference || '—', t.error || '',
        ]), 'No tasks match.'),
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
            t.canCancel && button('Cancel task', { class: 'danger', 'data-key': 'cancel', onclick: () => act(`Cancel ${t.taskName}?`,
              'It will be acknowledged without running when Cloud Tasks delivers it.', 'Cancel task', `tasks/${enc(t.id)}/cancel`, () => 'Task cancelled.') })),
          fields([
            ['ID', t.id], ['Status', badge(t.status)], ['Task', t.taskName], ['Queue', link(`#/tasks?queue=${enc(t.queue)}`, t.queue)],
            ['Reference', opt(t.reference)], ['Unique until', opt(t.uniqueUntil, time)],
            ['Created', time(t.createdAt)], ['ETA', time(t.eta)], ['Started', opt(t.startedAt, time)], ['Finished', opt(t.finishedAt, time)],
            ['Duration', opt(t.durationMs, duration)], ['Waited after ETA', t.startedAt ? duration(Math.max(0, t.startedAt - t.eta)) : undefined],
            ['Attempts', `${t.attempts}${t.maxAttempts ? ` of at most ${t.maxAttempts}` : ''}`], ['Execution count', String(t.executionCount)],
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
      render: ({ iteration: it }) => h('div', null,
        h('p', null, badge(it.status), ' ', ...progress('Shards done', it.percent, `${it.percent}% · ${it.shardsDone}/${it.shardCount} shards · ${it.processed} items`)),
        fields([['Callback', it.callbackTask], ['Finalize', it.finalizeTask], ['Queue', it.queue], ['Created', time(it.createdAt)],
          ['Finished', opt(it.finishedAt, time)], ['Errors', String(it.errors)]]),
        h('h3', null, 'Shards'),
        table('One row per shard', [['Shard', 'num'], ['Progress'], ['Items', 'num'], ['Errors', 'num'], ['Last error', 'err'], ['Started', 'hide-sm'], ['Finished', 'hide-sm']],
          it.shards.map((s) => [String(s.index),
            progress(`Shard ${s.index}`, s.done ? 100 : s.startedAt ? undefined : 0, s.done ? 'done' : s.startedAt ? 'running' : 'waiting'),
            String(s.processed), String(s.errors), s.lastError ? s.lastError.message : '', opt(s.startedAt, time) || '—', opt(s.finishedAt, time) || '—']),
          'Not split yet.')),
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
    window.addEventListener('hashchange', () => show(true));
    show(false);
  }
  start();
})();
