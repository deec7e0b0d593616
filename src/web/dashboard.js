// Synod dashboard: polls GET /v1/overview once a second and follows GET /v1/events (SSE).
// Plain script, no build step. Every string from the API goes through esc() before it
// reaches innerHTML.
// API tokens (agents with --api-token-file): when the API answers 401 or 403, the page asks for a
// token in #token-form, keeps it in localStorage and sends it as Authorization: Bearer from then
// on (the event stream is then read with fetch, as EventSource cannot send headers).
(function () {
  'use strict';

  const POLL_MS = 1000;            // overview cadence while the tab is visible
  const HIDDEN_POLL_MS = 5000;     // ... and while it is hidden
  const FAIL_POLL_MS = 2000;       // retry cadence once the node looks unreachable
  const FETCH_TIMEOUT_MS = 4000;   // overview fetch timeout
  const ACTION_TIMEOUT_MS = 30000; // form actions (send-command waits for delivery)
  const UNREACHABLE_AFTER = 3;     // consecutive failures before "node unreachable"...
  const UNREACHABLE_MS = 6000;     // ... or this long without an answer
  const WINDOW_S = 300;            // clock chart window
  const MAX_EVENTS = 100;
  const EVENT_TYPES = [
    'member.joined', 'member.rejoined', 'member.suspect', 'member.dead', 'member.revived',
    'member.left', 'member.alive', 'leader.changed', 'master.changed', 'command.sent', 'command.settled',
    'timer.fired', 'timer.failed', 'timer.skipped', 'file.synced', 'file.removed', 'file.conflict',
  ];
  const MEMBER_EVENT_STATE = {
    'member.joined': 'alive', 'member.rejoined': 'alive', 'member.revived': 'alive', 'member.alive': 'alive',
    'member.suspect': 'suspect', 'member.dead': 'dead', 'member.left': 'left',
  };
  const LATE_BINS = [
    [-Infinity, 0, '<0'], [0, 10, '0–10ms'], [10, 50, '10–50'], [50, 100, '50–100'],
    [100, 250, '100–250'], [250, 500, '250–500'], [500, 1000, '0.5–1s'], [1000, 5000, '1–5s'],
    [5000, Infinity, '≥5s'],
  ];
  const TOKEN_KEY = 'synod.apiToken'; // localStorage key of the API token
  const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04',
    '#db2777', '#4b5563', '#65a30d', '#7c3aed', '#0d9488'];

  const $ = (id) => document.getElementById(id);
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (v) => (v == null ? '' : String(v).replace(/[&<>"']/g, (c) => ESC[c]));
  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const num = (v) => typeof v === 'number' && isFinite(v);
  const cls = (v) => (typeof v === 'string' && /^[a-z_-]+$/.test(v) ? v : 'unknown');

  // A part of the overview is either the endpoint's body or {"error", "status"}.
  function partError(p) {
    if (p === undefined || p === null) return 'not available';
    if (isObj(p) && typeof p.error === 'string' && !('id' in p)) {
      return p.error + (p.status ? ' (HTTP ' + p.status + ')' : '');
    }
    return null;
  }
  const ok = (p) => (partError(p) ? null : p);

  const S = {
    ov: null, members: [], selfName: '', selfAddr: location.host,
    fails: 0, lastErr: '', startedAt: Date.now(), inflight: false, again: false, timer: 0, lastOkAt: 0,
    es: null, esOpen: false, lastEventId: 0, events: [], flushTimer: 0,
    overrides: {}, clock: {}, lastClockT: 0, clockChart: null, lateChart: null,
    sync: {}, firings: [], failures: [], lateness: [], fileEvents: [], lateBins: LATE_BINS.map(() => 0),
    html: new Map(), timings: {}, fromSig: '',
    token: '', needToken: false,
  };
  window.synodDashboard = S; // for tests and debugging

  // Assign innerHTML only when it changed.
  function setHTML(el, html) {
    if (typeof el === 'string') el = $(el);
    if (!el || S.html.get(el) === html) return;
    S.html.set(el, html);
    el.innerHTML = html;
  }
  function setText(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  // Keyed rows: one <tr> per key survives updates; only changed cells and attributes are
  // touched (cheap, and row elements stay valid for scripts holding them).
  function placeholder(tbody, html) {
    if (typeof tbody === 'string') tbody = $(tbody);
    if (tbody._rows) tbody._rows.clear();
    setHTML(tbody, html);
  }
  function keyedRows(tbody, rows, colCls, emptyHtml) {
    if (typeof tbody === 'string') tbody = $(tbody);
    if (!rows.length) return placeholder(tbody, emptyHtml);
    const keyed = tbody._rows || (tbody._rows = new Map());
    if (S.html.has(tbody)) { S.html.delete(tbody); tbody.textContent = ''; }
    const seen = new Set();
    let prev = null;
    for (const r of rows) {
      let e = keyed.get(r.key);
      if (!e) {
        const tr = document.createElement('tr');
        for (const c of colCls) tr.appendChild(document.createElement('td')).className = c;
        e = { tr, cells: [], attrs: {} };
        keyed.set(r.key, e);
      }
      for (const a in r.attrs) {
        const v = String(r.attrs[a] == null ? '' : r.attrs[a]);
        if (e.attrs[a] !== v) { e.tr.setAttribute(a, v); e.attrs[a] = v; }
      }
      for (let i = 0; i < r.cells.length; i++) {
        if (e.cells[i] !== r.cells[i]) { e.tr.children[i].innerHTML = r.cells[i]; e.cells[i] = r.cells[i]; }
      }
      const next = prev ? prev.nextSibling : tbody.firstChild;
      if (next !== e.tr) tbody.insertBefore(e.tr, next);
      prev = e.tr;
      seen.add(r.key);
    }
    for (const [k, e] of keyed) if (!seen.has(k)) { e.tr.remove(); keyed.delete(k); }
  }

  // ---------- formatting ----------
  const pad = (n) => (n < 10 ? '0' : '') + n;
  function fmtClock(unixS) {
    if (!num(unixS)) return '—';
    const d = new Date(unixS * 1000);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function fmtDur(s) {
    if (!num(s)) return '—';
    s = Math.max(0, s);
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.floor(s)) + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.floor(s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  const fmtAgo = (s) => (num(s) ? fmtDur(s) + ' ago' : '—');
  function fmtBytes(b) {
    if (!num(b)) return '—';
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(b) >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i === 0 ? b : b.toFixed(b < 10 ? 1 : 0)) + ' ' + u[i];
  }
  function fmtMs(ms) {
    if (!num(ms)) return '—';
    const a = Math.abs(ms);
    return (a >= 100 ? ms.toFixed(0) : a >= 1 ? ms.toFixed(2) : ms.toFixed(3)) + ' ms';
  }
  // A time given as unix seconds, unix nanoseconds or an RFC 3339 string -> unix seconds.
  function toUnix(v) {
    if (num(v)) return v > 1e14 ? v / 1e9 : v;
    if (typeof v === 'string') { const t = Date.parse(v); return isNaN(t) ? null : t / 1000; }
    return null;
  }
  function fmtWhen(v, now) {
    const t = toUnix(v);
    if (t === null) return v == null ? '—' : esc(v);
    const d = t - now;
    return esc(fmtClock(t)) + ' <span class="muted">(' + (d >= 0 ? 'in ' + fmtDur(d) : fmtDur(-d) + ' ago') + ')</span>';
  }
  const short = (id) => (id == null ? '' : String(id).slice(0, 8));
  // Today's times as HH:MM:SS, older ones with their date.
  function fmtStamp(unixS) {
    if (!num(unixS)) return '—';
    const d = new Date(unixS * 1000);
    if (d.toDateString() === new Date().toDateString()) return fmtClock(unixS);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  // ---------- HTTP ----------
  async function request(method, url, body, timeout) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeout || FETCH_TIMEOUT_MS);
    try {
      const opts = { method, signal: ctl.signal, cache: 'no-store', headers: authHeaders() };
      if (body !== undefined) {
        opts.headers['Content-Type'] = 'application/json';
        opts.body = JSON.stringify(body);
      }
      const r = await fetch(url, opts);
      const text = await r.text();
      let data = text;
      try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON: keep the text */ }
      if (r.status === 401 || r.status === 403) askToken(r.status, data);
      return { ok: r.ok, status: r.status, data };
    } catch (e) {
      return { ok: false, status: 0, data: null, neterr: e && e.name === 'AbortError' ? 'timed out' : String(e && e.message || e) };
    } finally {
      clearTimeout(timer);
    }
  }
  // The API's own words: {"error"} (native) or {"detail"} (seed API), plus the HTTP status.
  function apiError(r) {
    if (r.status === 0) return 'Request failed: ' + (r.neterr || 'network error');
    const d = r.data;
    let text = '';
    if (isObj(d)) {
      const m = d.error !== undefined ? d.error : d.detail !== undefined ? d.detail : d.message;
      text = typeof m === 'string' ? m : m !== undefined ? JSON.stringify(m) : JSON.stringify(d);
      if (typeof d.code === 'string') text += ' [' + d.code + ']';
    } else if (typeof d === 'string') {
      text = d.slice(0, 500);
    }
    return 'HTTP ' + r.status + (text ? ': ' + text : '') +
      (r.status === 401 || r.status === 403 ? ' (enter an API token above, then try again)' : '');
  }

  // ---------- API token ----------
  function loadToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function authHeaders() {
    return S.token ? { Authorization: 'Bearer ' + S.token } : {};
  }
  function showTokenState() {
    $('token-state').hidden = !S.token;
  }
  // The API refused a request (401: no token or an unknown one; 403: a read-only token).
  function askToken(status, data) {
    const form = $('token-form');
    const said = isObj(data) && typeof data.error === 'string' ? ' (' + data.error + ')' : '';
    const why = status === 403
      ? 'The API needs a token with write scope for this' + said + '.'
      : (S.token ? 'The API refused the token' : 'The API needs a token') + said + '.';
    $('token-why').textContent = why + ' Enter a token from the agents\' --api-token-file:';
    if (form.hidden) {
      form.hidden = false;
      $('token-input').focus();
    }
  }
  function setToken(token) {
    S.token = token;
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: kept for this page only */ }
    showTokenState();
    restartEvents();
    refreshSoon();
  }
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token-input').value.trim();
    if (!token) return;
    $('token-input').value = '';
    $('token-form').hidden = true;
    setToken(token);
  });
  $('token-forget').addEventListener('click', () => setToken(''));
  S.token = loadToken();
  showTokenState();
  function showMsg(id, html, kind) {
    const el = $(id);
    el.className = 'msg' + (kind ? ' ' + kind : '');
    el.innerHTML = html;
    S.html.delete(el);
  }

  // ---------- overview polling ----------
  function schedule(ms) {
    clearTimeout(S.timer);
    S.timer = setTimeout(poll, ms);
  }
  function refreshSoon() {
    if (S.inflight) S.again = true;
    else schedule(30);
  }
  async function poll() {
    clearTimeout(S.timer);
    if (S.inflight) { S.again = true; return; }
    S.inflight = true;
    S.again = false;
    const started = performance.now();
    const r = await request('GET', '/v1/overview');
    S.inflight = false;
    S.needToken = r.status === 401 || r.status === 403;
    if (r.ok && isObj(r.data)) {
      S.fails = 0;
      S.lastErr = '';
      S.lastOkAt = Date.now();
      try { render(r.data); } catch (e) { console.error('dashboard render failed', e); }
    } else if (S.needToken) {
      // Reachable, but it wants a token (asked for in #token-form): not a failing node.
      S.lastErr = apiError(r);
    } else {
      S.fails++;
      S.lastErr = r.ok ? 'unexpected response' : apiError(r);
    }
    updateConn();
    if (S.again) { schedule(30); return; }
    const period = unreachable() ? FAIL_POLL_MS : document.hidden ? HIDDEN_POLL_MS : POLL_MS;
    schedule(Math.max(50, period - (performance.now() - started)));
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshSoon(); });

  const unreachable = () => S.fails >= UNREACHABLE_AFTER ||
    (S.fails > 0 && Date.now() - (S.lastOkAt || S.startedAt) > UNREACHABLE_MS);
  function updateConn() {
    const badge = $('conn-status');
    let text, kind;
    if (S.needToken) {
      text = 'token needed'; kind = 'bad';
    } else if (S.fails === 0 && S.ov) {
      if (S.esOpen) { text = 'live'; kind = 'ok'; } else { text = 'connected · events reconnecting'; kind = 'warn'; }
    } else if (S.fails === 0) {
      text = 'connecting'; kind = 'warn';
    } else if (!unreachable()) {
      text = 'reconnecting'; kind = 'warn';
    } else {
      text = 'node unreachable'; kind = 'bad';
    }
    if (badge.textContent !== text) badge.textContent = text;
    badge.className = 'badge ' + kind;
    badge.title = S.lastErr || '';
    const banner = $('conn-banner');
    if (!unreachable()) {
      if (!banner.hidden) banner.hidden = true;
      return;
    }
    const others = S.members.filter((m) => m.ip + ':' + m.api_port !== S.selfAddr && m.state !== 'left');
    others.sort((a, b) => (a.state === 'alive' ? 0 : 1) - (b.state === 'alive' ? 0 : 1));
    const links = others.map((m) => '<a href="http://' + esc(m.ip) + ':' + esc(m.api_port) + '/">' +
      esc(m.name) + ' (' + esc(m.ip) + ':' + esc(m.api_port) + ')</a>').join(' ');
    setHTML(banner, 'Node <b>' + esc(S.selfName || location.host) + '</b> (' + esc(S.selfAddr) +
      ') is unreachable: ' + esc(S.lastErr) + '. Still retrying every ' + FAIL_POLL_MS / 1000 + ' s.' +
      (links ? '<br>Open another node\'s dashboard: ' + links : ''));
    banner.hidden = false;
  }

  // ---------- rendering ----------
  function render(ov) {
    const t0 = performance.now();
    S.ov = ov;
    const cl = ok(ov.cluster);
    if (cl && Array.isArray(cl.members)) S.members = cl.members;
    const panels = [
      ['header', renderHeader], ['members', renderMembers], ['clock', renderClock],
      ['heatmap', renderHeatmap], ['ranks', renderRanks], ['commands', renderCommands],
      ['timers', renderTimers], ['sync', renderSync], ['raft', renderRaft],
    ];
    for (const [name, fn] of panels) {
      const t = performance.now();
      try { fn(ov, cl); } catch (e) { console.error('panel ' + name + ' failed', e); }
      S.timings[name] = performance.now() - t;
    }
    S.timings.total = performance.now() - t0;
    setText('render-ms', S.timings.total.toFixed(1));
    setText('updated', 'updated ' + fmtClock(ov.generated_at));
  }

  function masterOf(ov) {
    const c = ok(ov.clock);
    if (c && isObj(c.master)) return c.master;
    const cm = Array.isArray(ov.clock_members) ? ov.clock_members : [];
    const id = cm.length ? cm[0].master_id : null;
    const m = id && cm.find((x) => x.id === id);
    return id ? { id, name: m ? m.name : short(id) } : null;
  }

  function renderHeader(ov, cl) {
    const node = ok(ov.node);
    if (node) {
      S.selfName = node.name || S.selfName;
      if (node.ip && node.api_port) S.selfAddr = node.ip + ':' + node.api_port;
    }
    const cid = cl && cl.cluster_id ? String(cl.cluster_id).slice(0, 8) : '…';
    const title = 'Synod — ' + cid;
    setText('title', title);
    const docTitle = title + (S.selfName ? ' (' + S.selfName + ')' : '');
    if (document.title !== docTitle) document.title = docTitle;
    setText('self-name', S.selfName || '?');
    setText('self-addr', S.selfAddr);
    setText('leader-name', cl ? (cl.leader && cl.leader.name ? cl.leader.name : 'none') : '?');
    const master = masterOf(ov);
    setText('master-name', master ? master.name || short(master.id) : 'none');
    setText('term', cl && cl.term != null ? String(cl.term) : '—');
    const q = $('quorum');
    if (cl) {
      setText('quorum', cl.quorum ? 'quorum' : 'no quorum');
      q.className = 'pill ' + (cl.quorum ? 'ok' : 'bad');
    } else {
      setText('quorum', 'cluster: ' + partError(ov.cluster));
      q.className = 'pill bad';
    }
  }

  // A member event newer than the overview wins (with a margin: an overview is stamped when
  // its parts are complete, a little after the state it shows was read).
  function memberState(m, now) {
    const o = S.overrides[m.id];
    return o && o.time + 0.5 > now ? o.state : m.state;
  }

  const MEMBER_COLS = ['', '', '', '', '', '', 'num', 'num'];
  function renderMembers(ov, cl) {
    if (!cl) {
      placeholder('members', '<tr><td colspan="8" class="perr">' + esc(partError(ov.cluster)) + '</td></tr>');
      return;
    }
    const now = ov.generated_at;
    const leaderId = cl.leader && cl.leader.id;
    const master = masterOf(ov);
    const nodes = isObj(ov.nodes) ? ov.nodes : {};
    const counts = {};
    const rows = [];
    for (const m of cl.members || []) {
      const state = memberState(m, now);
      counts[state] = (counts[state] || 0) + 1;
      const n = nodes[m.id];
      const health = n && ok(n.health);
      let uptime = '—';
      if (health && num(health.uptime_s)) uptime = fmtDur(health.uptime_s);
      else if (n && partError(n)) uptime = '<span class="perr" title="' + esc(partError(n)) + '">unreachable</span>';
      else if (n && n.health && partError(n.health)) uptime = '<span class="perr" title="' + esc(partError(n.health)) + '">?</span>';
      let tags = '';
      if (m.id === leaderId) tags += '<span class="tag leader">leader</span> ';
      if (master && m.id === master.id) tags += '<span class="tag master">master</span> ';
      if (m.id === ov.self) tags += '<span class="tag self">this node</span>';
      rows.push({
        key: m.id,
        attrs: { 'data-member-id': m.id, 'data-state': state, 'data-role': m.role },
        cells: ['<b>' + esc(m.name) + '</b>', '<span class="mono" title="' + esc(m.id) + '">' + esc(short(m.id)) + '</span>',
          esc(m.ip) + ':' + esc(m.api_port), esc(m.role), '<span class="st ' + cls(state) + '">' + esc(state) + '</span>',
          tags, uptime, num(m.last_heartbeat) ? fmtAgo(now - m.last_heartbeat) : '—'],
      });
    }
    keyedRows('members', rows, MEMBER_COLS, '<tr><td colspan="8" class="muted">no members</td></tr>');
    setText('members-count', Object.keys(counts).map((k) => counts[k] + ' ' + k).join(', '));
    updateCommandFrom(cl.members || []);
  }

  // ----- clock -----
  function colorFor(i) {
    return i < PALETTE.length ? PALETTE[i] : 'hsl(' + Math.round((i * 137.5) % 360) + ',65%,45%)';
  }
  function ensureClockChart() {
    if (S.clockChart || typeof Chart === 'undefined') return S.clockChart;
    S.clockChart = new Chart($('clock-chart'), {
      type: 'line',
      data: { datasets: [] },
      options: {
        animation: false, parsing: false, normalized: true, responsive: true,
        maintainAspectRatio: false, spanGaps: false,
        elements: { point: { radius: 0, hitRadius: 4 }, line: { borderWidth: 1.5, tension: 0 } },
        interaction: { mode: 'nearest', intersect: false },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 10, font: { size: 10 } } },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? fmtClock(items[0].parsed.x) : ''),
              label: (item) => {
                const s = S.clock[item.dataset.memberId];
                const off = s && s.off[item.dataIndex], err = s && s.err[item.dataIndex];
                return item.dataset.label + ': ' + fmtMs(off && off.y) + ' ± ' + fmtMs(err && err.y);
              },
            },
          },
        },
        scales: {
          x: { type: 'linear', ticks: { maxTicksLimit: 6, maxRotation: 0, callback: (v) => fmtClock(v) } },
          y: { title: { display: true, text: 'ms' }, ticks: { maxTicksLimit: 6 } },
        },
      },
    });
    return S.clockChart;
  }

  function renderClock(ov) {
    const cm = Array.isArray(ov.clock_members) ? ov.clock_members : null;
    if (!cm) {
      setHTML('clock-table', '<tr><td colspan="5" class="perr">' + esc(partError(ov.clock_members)) + '</td></tr>');
    }
    const t = ov.generated_at;
    if (cm && num(t) && t > S.lastClockT) {
      S.lastClockT = t;
      for (const m of cm) {
        const s = S.clock[m.id] || (S.clock[m.id] = { name: m.name, off: [], err: [] });
        s.name = m.name || short(m.id);
        const good = m.synced !== false;
        s.off.push({ x: t, y: good && num(m.offset_ms) ? m.offset_ms : null });
        s.err.push({ x: t, y: good && num(m.error_ms) ? m.error_ms : null });
      }
      for (const id of Object.keys(S.clock)) {
        const s = S.clock[id];
        let k = 0;
        while (k < s.off.length && s.off[k].x < t - WINDOW_S) k++;
        if (k) { s.off.splice(0, k); s.err.splice(0, k); }
        if (!s.off.length) delete S.clock[id];
      }
    }
    if (cm) {
      let h = '';
      for (const m of cm) {
        h += '<tr><td>' + esc(m.name || short(m.id)) + '</td><td class="num">' + fmtMs(m.offset_ms) +
          '</td><td class="num">' + fmtMs(m.error_ms) + '</td><td><span class="st ' + (m.synced ? 'yes' : 'no') + '">' +
          (m.synced ? 'yes' : 'no') + '</span></td><td class="num">' + fmtDur(m.report_age_s) + '</td></tr>';
      }
      setHTML('clock-table', h || '<tr><td colspan="5" class="muted">no reports</td></tr>');
    }
    // The chart is drawn in a task of its own so the tables above paint first.
    if (!S.clockPending) { S.clockPending = true; setTimeout(drawClock, 0); }
  }

  function drawClock() {
    S.clockPending = false;
    const t0 = performance.now();
    const t = S.lastClockT || null;
    const chart = ensureClockChart();
    if (!chart) return;
    const mode = $('clock-mode').value === 'err' ? 'err' : 'off';
    const ids = Object.keys(S.clock).sort((a, b) => String(S.clock[a].name).localeCompare(String(S.clock[b].name)));
    const old = new Map(chart.data.datasets.map((d) => [d.memberId, d]));
    chart.data.datasets = ids.map((id, i) => {
      const d = old.get(id) || { memberId: id, borderColor: colorFor(i), backgroundColor: colorFor(i) };
      d.label = S.clock[id].name;
      d.data = S.clock[id][mode];
      return d;
    });
    chart.options.plugins.legend.display = ids.length <= 16;
    chart.options.scales.x.min = (num(t) ? t : Date.now() / 1000) - WINDOW_S;
    chart.options.scales.x.max = num(t) ? t : Date.now() / 1000;
    chart.options.scales.y.title.text = mode === 'err' ? 'error bound, ms' : 'offset, ms';
    chart.update('none');
    S.timings.clockChart = performance.now() - t0;
  }
  $('clock-mode').addEventListener('change', drawClock);

  // ----- delay heatmap -----
  function rttBucket(ms) {
    const b = Math.floor((Math.log10(Math.max(ms, 1e-3)) + 1) * 2.5);
    return b < 0 ? 0 : b > 9 ? 9 : b;
  }
  function fmtRtt(ms) { return ms < 1 ? ms.toFixed(2) : ms < 10 ? ms.toFixed(1) : Math.round(ms); }

  function renderHeatmap(ov, cl) {
    if (!cl) return;
    const ms = (cl.members || []).filter((m) => m.state !== 'left');
    const nodes = isObj(ov.nodes) ? ov.nodes : {};
    const idx = {};
    ms.forEach((m, i) => { idx[m.id] = i; });
    const byIp = {};
    ms.forEach((m, i) => { if (byIp[m.ip] === undefined) byIp[m.ip] = i; else byIp[m.ip] = -1; });
    let h = '<thead><tr><th>from \\ to</th>';
    for (const m of ms) h += '<th>' + esc(m.name) + '</th>';
    h += '</tr></thead><tbody>';
    const row = new Array(ms.length);
    for (let r = 0; r < ms.length; r++) {
      const from = ms[r];
      const n = nodes[from.id];
      const neighbors = n && Array.isArray(n.neighbors) ? n.neighbors : null;
      row.fill(undefined);
      if (neighbors) {
        for (const nb of neighbors) {
          let c = nb.node_id !== undefined ? idx[nb.node_id] : byIp[nb.ip];
          if (c !== undefined && c >= 0) row[c] = nb.rtt_ms;
        }
      }
      const why = !n ? 'no data' : partError(n) || (neighbors ? '' : partError(n.neighbors));
      h += '<tr' + (why ? ' class="down"' : '') + '><th' + (why ? ' title="' + esc(why) + '"' : '') + '>' + esc(from.name) + '</th>';
      for (let c = 0; c < ms.length; c++) {
        const v = row[c];
        if (c === r) h += '<td class="self">·</td>';
        else if (num(v)) h += '<td class="h' + rttBucket(v) + '">' + fmtRtt(v) + '</td>';
        else h += '<td class="none">–</td>';
      }
      h += '</tr>';
    }
    S.heatNames = ms.map((m) => m.name);
    const table = $('heatmap'), card = $('delay-card');
    table.classList.toggle('dense', ms.length > 12);
    card.classList.toggle('wide', ms.length > 6);
    card.classList.toggle('full', ms.length > 16);
    setHTML('heatmap', h + '</tbody>');
  }
  // Tooltips on demand instead of a title on each of the n² cells.
  $('heatmap').addEventListener('mouseover', (e) => {
    const td = e.target.closest && e.target.closest('td');
    if (!td || !S.heatNames) return;
    const r = td.parentNode.rowIndex - 1, c = td.cellIndex - 1;
    if (r >= 0 && c >= 0) td.title = S.heatNames[r] + ' → ' + S.heatNames[c] + ': ' + td.textContent + (td.className.startsWith('h') ? ' ms' : '');
  });

  // ----- ranks and commands -----
  function renderRanks(ov) {
    const rk = ok(ov.ranks);
    if (!rk) {
      setHTML('ranks', '<tr><td colspan="5" class="perr">' + esc(partError(ov.ranks)) + '</td></tr>');
      return;
    }
    let h = '';
    for (const r of rk.ranks || []) {
      h += '<tr><td class="num">' + esc(r.rank) + '</td><td>' + esc(r.name || '') + '</td><td>' + esc(r.kind) +
        '</td><td>' + esc(r.address) + '</td><td>' + esc(fmtStamp(toUnix(r.ranked_at))) + '</td></tr>';
    }
    setHTML('ranks', h || '<tr><td colspan="5" class="muted">no ranks</td></tr>');
    setText('ranks-info', rk.last_command_id != null ? 'last command #' + rk.last_command_id : '');
  }

  const COMMAND_COLS = ['num', 'wrap mono', '', '', 'wrap'];
  function renderCommands(ov) {
    const c = ok(ov.commands);
    if (!c) {
      placeholder('commands', '<tr><td colspan="5" class="perr">' + esc(partError(ov.commands)) + '</td></tr>');
      return;
    }
    const rows = [];
    for (const rec of c.commands || []) {
      let chips = '';
      for (const r of rec.recipients || []) {
        chips += '<span class="tag ' + cls(r.state) + '"' + (r.error ? ' title="' + esc(r.error) + '"' : '') + '>' +
          esc(r.address) + ' ' + esc(r.state) + (r.error ? ': ' + esc(r.error) : '') + '</span> ';
      }
      const sender = isObj(rec.sender) ? rec.sender.address + (rec.sender.rank != null ? ' (rank ' + rec.sender.rank + ')' : '') : rec.sender;
      rows.push({
        key: String(rec.id),
        attrs: { 'data-command-id': rec.id, 'data-settled': rec.settled ? 'true' : 'false' },
        cells: [esc(rec.id), esc(rec.command), esc(sender), esc(fmtStamp(toUnix(rec.sent_at))),
          (num(rec.delivered) && (rec.recipients || []).length ? '<b>' + rec.delivered + '/' + (rec.recipients || []).length + '</b> delivered ' : '') +
          (chips || '<span class="muted">no recipients</span>')],
      });
    }
    keyedRows('commands', rows, COMMAND_COLS, '<tr><td colspan="5" class="muted">no commands yet</td></tr>');
  }

  // Sending members, highest rank (0) first: a command goes to the ranks below its sender.
  function updateCommandFrom(members) {
    const rk = S.ov && ok(S.ov.ranks);
    const rankOf = {};
    if (rk && Array.isArray(rk.ranks)) for (const r of rk.ranks) if (r.id) rankOf[r.id] = r.rank;
    const live = members.filter((m) => m.state !== 'left' && m.ip && m.api_port);
    const rank = (m) => (num(rankOf[m.id]) ? rankOf[m.id] : Infinity);
    live.sort((a, b) => rank(a) - rank(b));
    const sig = live.map((m) => m.id + m.name + m.ip + m.api_port + rank(m)).join('|');
    if (sig === S.fromSig) return;
    S.fromSig = sig;
    const sel = $('command-from');
    const current = sel.value;
    sel.innerHTML = live.map((m) => {
      const v = m.ip + ':' + m.api_port;
      return '<option value="' + esc(v) + '"' + (v === current ? ' selected' : '') + '>' + esc(m.name) +
        (num(rankOf[m.id]) ? ' · rank ' + rankOf[m.id] : '') + ' (' + esc(v) + ')</option>';
    }).join('');
  }

  $('command-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = $('command-send');
    const command = $('command-text').value;
    const from = $('command-from').value;
    btn.disabled = true;
    showMsg('command-result', 'Sending from ' + esc(from) + '…', '');
    const r = await request('POST', '/send-command', { command, ip_port: from }, ACTION_TIMEOUT_MS);
    btn.disabled = false;
    if (!r.ok) {
      showMsg('command-result', esc(apiError(r)), 'err');
    } else if (isObj(r.data)) {
      const entries = Object.keys(r.data).map((addr) => [addr, r.data[addr]]);
      let allOk = true;
      const items = entries.map(([addr, res]) => {
        const good = isObj(res) && res.success === true;
        if (!good) allOk = false;
        return '<li>' + (good ? '✓ ' + esc(addr) + ' delivered'
          : '✗ ' + esc(addr) + ' failed' + (isObj(res) && res.error ? ': ' + esc(res.error) : '')) + '</li>';
      });
      showMsg('command-result', 'Command sent from ' + esc(from) + ' to ' + entries.length + ' recipient(s):' +
        (items.length ? '<ul>' + items.join('') + '</ul>' : ' none (no other ranks)'), allOk ? 'ok' : 'err');
      if (allOk) $('command-text').value = '';
    } else {
      showMsg('command-result', 'Unexpected answer: ' + esc(JSON.stringify(r.data)), 'err');
    }
    refreshSoon();
  });

  // ----- timers -----
  const TIMER_COLS = ['', 'wrap', '', ''];
  function renderTimers(ov) {
    const now = ov.generated_at;
    const st = ok(ov.timer_stats);
    if (st) {
      const keys = ['waiting', 'executing', 'done', 'failed', 'cancelled', 'skipped', 'total'];
      setHTML('timer-stats', keys.map((k) => '<span>' + k + ' <b>' + esc(st[k] != null ? st[k] : '—') + '</b></span>').join('') +
        '<span>next due <b>' + (st.next_due != null ? fmtWhen(st.next_due, now) : 'none') + '</b></span>');
    } else {
      setHTML('timer-stats', '<span class="perr">' + esc(partError(ov.timer_stats)) + '</span>');
    }
    const tl = ok(ov.timers);
    if (!tl) {
      placeholder('timers', '<tr><td colspan="4" class="perr">' + esc(partError(ov.timers)) + '</td></tr>');
      return;
    }
    const rows = [];
    for (const t of tl.timers || []) {
      const dueAt = num(t.time_left) ? now + t.time_left : toUnix(t.due_nanos != null ? t.due_nanos : t.due);
      const waiting = t.status === 'waiting' || t.status === undefined;
      rows.push({
        key: String(t.id),
        attrs: { 'data-timer-id': t.id, 'data-status': t.status },
        cells: ['<span class="mono" title="' + esc(t.id) + '">' + esc(short(t.id)) + '</span>',
          esc(t.method ? t.method + ' ' : '') + esc(t.url), esc(fmtClock(dueAt)),
          waiting ? '<button type="button" class="cancel" data-cancel="' + esc(t.id) + '">Cancel</button>' : esc(t.status)],
      });
    }
    keyedRows('timers', rows, TIMER_COLS, '<tr><td colspan="4" class="muted">no waiting timers</td></tr>');
  }

  function renderTimerEvents() {
    const li = (x) => '<li><span class="t">' + esc(fmtClock(x.time)) + '</span>';
    setHTML('timer-firings', S.firings.slice(0, 30).map((f) => li(f) + '<span class="mono">' + esc(short(f.timer_id)) + '</span> ' +
      esc(f.url) + ' → <b>' + esc(f.http_status != null ? f.http_status : '?') + '</b>, late ' + fmtMs(f.lateness_ms) +
      (f.by ? ' by ' + esc(f.by) : '') + '</li>').join('') || '<li class="empty">none seen</li>');
    setHTML('timer-failures', S.failures.slice(0, 30).map((f) => li(f) + '<span class="mono">' + esc(short(f.timer_id)) + '</span> ' +
      esc(f.url) + ': <span class="perr">' + (f.type === 'timer.skipped' ? 'skipped (too late)' : esc(f.error)) + '</span>' +
      (f.attempt ? ', attempt ' + esc(f.attempt) : '') + (f.by ? ' by ' + esc(f.by) : '') + '</li>').join('') ||
      '<li class="empty">none seen</li>');
    if (S.lateness.length > 1000) S.lateness.splice(0, S.lateness.length - 1000);
    const late = S.lateness.slice().sort((a, b) => a - b);
    setText('lateness-info', late.length ? late.length + ' attempts, median ' + fmtMs(late[late.length >> 1]) +
      ', max ' + fmtMs(late[late.length - 1]) : '');
    if (typeof Chart === 'undefined') return;
    if (!S.lateChart) {
      S.lateChart = new Chart($('lateness-chart'), {
        type: 'bar',
        data: { labels: LATE_BINS.map((b) => b[2]), datasets: [{ label: 'attempts', data: S.lateBins.slice(), backgroundColor: '#60a5fa' }] },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          scales: { x: { ticks: { font: { size: 10 }, maxRotation: 0, autoSkip: false } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
    } else {
      S.lateChart.data.datasets[0].data = S.lateBins.slice();
      S.lateChart.update('none');
    }
  }

  $('timers').addEventListener('click', async (e) => {
    const btn = e.target.closest && e.target.closest('button[data-cancel]');
    if (!btn) return;
    const id = btn.getAttribute('data-cancel');
    btn.disabled = true;
    const r = await request('DELETE', '/v1/timers/' + encodeURIComponent(id), undefined, ACTION_TIMEOUT_MS);
    btn.disabled = false;
    if (r.ok) showMsg('timer-result', 'Cancelled timer ' + esc(id) + (isObj(r.data) && r.data.status ? ' (now ' + esc(r.data.status) + ')' : ''), 'ok');
    else showMsg('timer-result', 'Could not cancel ' + esc(id) + ': ' + esc(apiError(r)), 'err');
    refreshSoon();
  });

  $('timer-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { url: $('timer-url').value.trim() };
    const delay = $('timer-delay').value.trim();
    if (delay !== '') body.delay = /^\d+(\.\d+)?$/.test(delay) ? Number(delay) : delay;
    const btn = $('timer-create');
    btn.disabled = true;
    showMsg('timer-result', 'Creating…', '');
    const r = await request('POST', '/v1/timers', body, ACTION_TIMEOUT_MS);
    btn.disabled = false;
    if (r.ok && isObj(r.data)) {
      const t = r.data;
      showMsg('timer-result', 'Created timer <span class="mono">' + esc(t.id) + '</span>' +
        (t.due ? ', due ' + fmtWhen(t.due_nanos != null ? t.due_nanos : t.due, Date.now() / 1000) : ''), 'ok');
    } else {
      showMsg('timer-result', esc(r.ok ? 'Unexpected answer: ' + JSON.stringify(r.data) : apiError(r)), 'err');
    }
    refreshSoon();
  });

  // ----- file sync -----
  function bar(left, peak, label) {
    const pct = left <= 0 ? 100 : peak > 0 ? Math.max(0, Math.min(100, 100 * (1 - left / peak))) : 0;
    return '<div class="bar' + (left <= 0 ? ' done' : '') + '" title="' + pct.toFixed(0) + '% done"><i style="width:' + pct.toFixed(1) + '%"></i><span>' + label + '</span></div>';
  }
  function renderSync(ov, cl) {
    const nodes = isObj(ov.nodes) ? ov.nodes : {};
    const names = {};
    for (const m of (cl && cl.members) || []) names[m.id] = m.name;
    const t = ov.generated_at;
    let h = '';
    // Members in join order, then any other node the overview reports.
    const ids = ((cl && cl.members) || []).map((m) => m.id).filter((id) => id in nodes);
    for (const id of Object.keys(nodes)) if (!ids.includes(id)) ids.push(id);
    for (const id of ids) {
      const n = nodes[id];
      const name = esc(names[id] || (n && n.node && n.node.name) || short(id));
      const s = n && ok(n.sync);
      if (!s) {
        h += '<tr><td>' + name + '</td><td colspan="6" class="perr">' + esc(partError(n) || partError(n && n.sync)) + '</td></tr>';
        continue;
      }
      if (s.enabled === false) {
        h += '<tr><td>' + name + '</td><td colspan="6" class="muted">file sync disabled</td></tr>';
        continue;
      }
      const st = S.sync[id] || (S.sync[id] = { t: 0, fetched: null, rate: 0, peakF: 0, peakB: 0 });
      const pf = num(s.pending_files) ? s.pending_files : 0, pb = num(s.pending_bytes) ? s.pending_bytes : 0;
      if (pf === 0 && pb === 0) { st.peakF = 0; st.peakB = 0; } else { st.peakF = Math.max(st.peakF, pf); st.peakB = Math.max(st.peakB, pb); }
      // Rate over the node's own view times (a remote view may be reused between overviews).
      const tv = num(n.generated_at) ? n.generated_at : t;
      if (num(tv) && tv > st.t && num(s.fetched_bytes_total)) {
        if (st.fetched !== null && st.t > 0) st.rate = Math.max(0, (s.fetched_bytes_total - st.fetched) / (tv - st.t));
        st.fetched = s.fetched_bytes_total;
        st.t = tv;
      }
      const errs = Array.isArray(s.errors) && s.errors.length;
      h += '<tr><td>' + name + '</td><td><span class="st ' + (s.in_sync ? 'yes' : 'no') + '">' + (s.in_sync ? 'in sync' : 'syncing') +
        '</span>' + (errs ? ' <span class="perr" title="' + esc(s.errors.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n')) + '">' + errs + ' errors</span>' : '') +
        '</td><td>' + bar(pf, st.peakF, pf + ' files') + '</td><td>' + bar(pb, st.peakB, esc(fmtBytes(pb))) +
        '</td><td class="num">' + fmtBytes(st.rate) + '/s</td><td class="num">' + fmtBytes(s.fetched_bytes_total) +
        (num(s.fetched_files_total) ? ' <span class="muted">(' + s.fetched_files_total + ' files)</span>' : '') +
        '</td><td class="num">' + esc(s.conflicts_total != null ? s.conflicts_total : '—') + '</td></tr>';
    }
    setHTML('sync', h || '<tr><td colspan="7" class="muted">no nodes</td></tr>');
  }
  function renderFileEvents() {
    setHTML('file-events', S.fileEvents.slice(0, 40).map((f) => {
      let what = esc(f.path);
      if (f.type === 'file.synced') what = 'synced ' + what + (num(f.size) ? ' <span class="muted">(' + fmtBytes(f.size) + ')</span>' : '');
      else if (f.type === 'file.removed') what = 'removed ' + what;
      else if (f.type === 'file.conflict') what = '<span class="perr">conflict</span> ' + what + ' → kept as ' + esc(f.conflict_path);
      else what = esc(f.type) + ' ' + what;
      return '<li><span class="t">' + esc(fmtClock(f.time)) + '</span>' + what + '</li>';
    }).join('') || '<li class="empty">no changes seen</li>');
  }

  // ----- raft -----
  const RAFT_KEYS = ['phase', 'term', 'commit_index', 'applied_index', 'last_index', 'snapshot_index',
    'quorum', 'voters', 'voters_alive', 'standbys', 'spares', 'member'];
  function fmtValue(k, v, now) {
    if (num(v)) {
      if (/bytes|size/.test(k)) return esc(fmtBytes(v)) + ' <span class="muted">(' + v + ')</span>';
      if (/(_at|time|when)$/.test(k) && v > 1e9) return fmtWhen(v, now);
      if (/_ms$/.test(k)) return esc(fmtMs(v));
      if (/_s$/.test(k)) return esc(fmtDur(v));
      return esc(v);
    }
    if (typeof v === 'string' && /(_at|time|when)$/.test(k) && !isNaN(Date.parse(v))) return fmtWhen(v, now);
    if (v === null) return '—';
    if (typeof v === 'object') return '<span class="mono">' + esc(JSON.stringify(v).slice(0, 300)) + '</span>';
    return esc(v);
  }
  function kvList(obj, now, prefix, depth, out) {
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (isObj(v) && depth < 2) kvList(v, now, prefix + k + '.', depth + 1, out);
      else out.push('<dt>' + esc(prefix + k) + '</dt><dd>' + fmtValue(k, v, now) + '</dd>');
    }
    return out;
  }
  function renderRaft(ov, cl) {
    const now = ov.generated_at;
    if (!cl) { setHTML('raft', '<div class="perr">' + esc(partError(ov.cluster)) + '</div>'); return; }
    let h = '<dl class="kv">';
    for (const k of RAFT_KEYS) if (cl[k] !== undefined) h += '<dt>' + k + '</dt><dd>' + fmtValue(k, cl[k], now) + '</dd>';
    h += '<dt>leader</dt><dd>' + (cl.leader ? esc(cl.leader.name) + ' <span class="muted">' + esc(cl.leader.ip) + '</span>' : 'none') + '</dd>';
    h += '<dt>served by</dt><dd>' + esc(S.selfName) + '</dd></dl>';
    const snaps = cl.snapshots !== undefined ? cl.snapshots : ov.snapshots;
    h += '<h3>Snapshots</h3>';
    if (isObj(snaps)) h += '<dl class="kv">' + kvList(snaps, now, '', 0, []).join('') + '</dl>';
    else if (Array.isArray(snaps)) h += snaps.length ? '<dl class="kv">' + snaps.slice(0, 10).map((s, i) => kvList(isObj(s) ? s : { value: s }, now, i + '.', 1, []).join('')).join('') + '</dl>' : '<div class="muted">none</div>';
    else h += '<div class="muted">not reported</div>';
    // Per node: whatever raft-ish fields its own view carries.
    const nodes = isObj(ov.nodes) ? ov.nodes : {};
    const rows = [];
    const cols = new Set();
    for (const id of Object.keys(nodes)) {
      const n = nodes[id];
      if (!isObj(n)) continue;
      const src = Object.assign({}, ok(n.node) || {}, ok(n.raft) || {}, ok(n.cluster) || {});
      const f = {};
      for (const k of Object.keys(src)) if (/term|index|snapshot/.test(k) && !isObj(src[k])) { f[k] = src[k]; cols.add(k); }
      rows.push([(src.name || short(id)), f]);
    }
    if (cols.size) {
      const cs = [...cols];
      h += '<h3>Per node</h3><div class="scroll"><table class="t small"><thead><tr><th>Node</th>' + cs.map((c) => '<th>' + esc(c) + '</th>').join('') +
        '</tr></thead><tbody>' + rows.map(([name, f]) => '<tr><td>' + esc(name) + '</td>' + cs.map((c) => '<td class="num">' + fmtValue(c, f[c], now) + '</td>').join('') + '</tr>').join('') +
        '</tbody></table></div>';
    }
    setHTML('raft', h);
  }

  // ---------- events ----------
  function describe(d) {
    const who = (m) => (isObj(m) ? esc(m.name || short(m.id)) + (m.ip ? ' <span class="muted">' + esc(m.ip) + '</span>' : '') : 'none');
    switch (d.type) {
      case 'leader.changed': return 'leader ' + who(d.leader) + (d.term != null ? ', term ' + esc(d.term) : '');
      case 'master.changed': return 'master ' + who(d.master);
      case 'command.sent': return '#' + esc(d.command_id) + ' <span class="mono">' + esc(d.command) + '</span> from ' + esc(d.sender) + ' to ' + esc(d.recipients);
      case 'command.settled': return '#' + esc(d.command_id) + ' delivered ' + esc(d.delivered) + ', failed ' + esc(d.failed);
      case 'timer.fired': return esc(short(d.timer_id)) + ' ' + esc(d.url) + ' → ' + esc(d.http_status) + ', late ' + fmtMs(d.lateness_ms) + (d.by ? ' by ' + esc(d.by) : '');
      case 'timer.failed': return esc(short(d.timer_id)) + ' ' + esc(d.url) + ': ' + esc(d.error) + (d.by ? ' by ' + esc(d.by) : '');
      case 'timer.skipped': return esc(short(d.timer_id)) + ' ' + esc(d.url) + ' skipped, late ' + fmtMs(d.lateness_ms);
      case 'file.synced': return esc(d.path) + (num(d.size) ? ' (' + fmtBytes(d.size) + ')' : '');
      case 'file.removed': return esc(d.path);
      case 'file.conflict': return esc(d.path) + ' → ' + esc(d.conflict_path);
      default: {
        if (d.type && d.type.startsWith('member.')) return who(d.member);
        const rest = Object.assign({}, d);
        delete rest.id; delete rest.type; delete rest.time; delete rest.node;
        return '<span class="mono">' + esc(JSON.stringify(rest).slice(0, 200)) + '</span>';
      }
    }
  }

  function onEvent(e) {
    let d;
    try { d = JSON.parse(e.data); } catch (err) { d = { raw: e.data }; }
    if (!isObj(d)) d = { value: d };
    if (!d.type) d.type = e.type === 'message' ? 'message' : e.type;
    const id = Number(d.id !== undefined ? d.id : e.lastEventId) || 0;
    if (id) {
      if (id <= S.lastEventId) return; // already seen (replay after a reconnect)
      S.lastEventId = id;
    }
    if (!num(d.time)) d.time = Date.now() / 1000;
    S.events.unshift(d);
    if (S.events.length > MAX_EVENTS) S.events.length = MAX_EVENTS;
    const type = d.type;
    let dirty = 'events';
    if (MEMBER_EVENT_STATE[type] && isObj(d.member) && d.member.id) {
      S.overrides[d.member.id] = { state: MEMBER_EVENT_STATE[type], time: d.time };
      dirty = 'members';
    }
    if (type.startsWith('member.') || type.startsWith('leader.') || type.startsWith('master.') || type.startsWith('command.')) {
      refreshSoon();
    } else if (type.startsWith('timer.')) {
      // Every attempt that ran (fired or failed) counts in the lateness histogram.
      if (type !== 'timer.skipped' && num(d.lateness_ms)) {
        S.lateness.push(d.lateness_ms);
        const b = LATE_BINS.findIndex((x) => d.lateness_ms >= x[0] && d.lateness_ms < x[1]);
        if (b >= 0) S.lateBins[b]++;
      }
      const list = type === 'timer.fired' ? S.firings : S.failures;
      list.unshift(d);
      if (list.length > 100) list.length = 100;
      dirty = 'timers';
    } else if (type.startsWith('file.')) {
      S.fileEvents.unshift(d);
      if (S.fileEvents.length > 100) S.fileEvents.length = 100;
      dirty = 'files';
    }
    markDirty(dirty);
  }

  // New events are prepended; existing <li> are kept.
  function eventLi(d) {
    return '<li data-event-type="' + esc(d.type) + '"><span class="t">' + esc(fmtClock(d.time)) +
      '</span><span class="ty">' + esc(d.type) + '</span>' + describe(d) + '</li>';
  }
  function renderEventList() {
    const ul = $('events');
    const at = S.evTop ? S.events.indexOf(S.evTop) : -1;
    if (!S.events.length) {
      ul.innerHTML = '<li class="empty">no events yet</li>';
    } else if (at < 0) {
      ul.innerHTML = S.events.map(eventLi).join('');
    } else if (at > 0) {
      if (ul.firstElementChild && ul.firstElementChild.className === 'empty') ul.textContent = '';
      ul.insertAdjacentHTML('afterbegin', S.events.slice(0, at).map(eventLi).join(''));
      while (ul.children.length > MAX_EVENTS) ul.lastElementChild.remove();
    }
    S.evTop = S.events[0];
    setText('events-info', S.events.length ? 'last ' + S.events.length : '');
  }

  // Event bursts (the replay on connect) are rendered at most every 150 ms.
  const dirtySet = new Set();
  function markDirty(what) {
    dirtySet.add('events');
    dirtySet.add(what);
    if (!S.flushTimer) S.flushTimer = setTimeout(flushEvents, 150);
  }
  function flushEvents() {
    S.flushTimer = 0;
    try {
      if (dirtySet.has('events')) renderEventList();
      if (dirtySet.has('members') && S.ov) renderMembers(S.ov, ok(S.ov.cluster));
      if (dirtySet.has('timers')) renderTimerEvents();
      if (dirtySet.has('files')) renderFileEvents();
    } catch (e) { console.error('event render failed', e); }
    dirtySet.clear();
  }

  function restartEvents() {
    const old = S.es;
    S.es = null;
    S.esOpen = false;
    if (old) old.close();
    openEvents();
  }

  // With a token: the stream read with fetch, parsed as Server-Sent Events (field lines, a blank
  // line ends an event), since EventSource cannot send an Authorization header.
  function openEventsWithToken() {
    const ctl = new AbortController();
    const handle = { close: () => ctl.abort() };
    S.es = handle;
    // Ended or refused: again in `ms`, unless another stream replaced this one meanwhile.
    const retry = (ms) => {
      if (S.es !== handle) return;
      S.es = null;
      S.esOpen = false;
      updateConn();
      setTimeout(openEvents, ms);
    };
    const url = '/v1/events' + (S.lastEventId ? '?since=' + S.lastEventId : '');
    fetch(url, { headers: Object.assign({ Accept: 'text/event-stream' }, authHeaders()), cache: 'no-store', signal: ctl.signal })
      .then(async (r) => {
        if (r.status === 401 || r.status === 403) {
          let data = null;
          try { data = await r.json(); } catch (e) { /* not JSON */ }
          askToken(r.status, data);
          retry(5000);
          return;
        }
        if (!r.ok || !r.body) { retry(3000); return; }
        S.esOpen = true;
        updateConn();
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        let ev = { type: '', data: [] };
        let lastId = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            let line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.endsWith('\r')) line = line.slice(0, -1);
            if (line === '') {
              if (ev.data.length) onEvent({ type: ev.type || 'message', data: ev.data.join('\n'), lastEventId: lastId });
              ev = { type: '', data: [] };
              continue;
            }
            if (line[0] === ':') continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let val = colon < 0 ? '' : line.slice(colon + 1);
            if (val[0] === ' ') val = val.slice(1);
            if (field === 'data') ev.data.push(val);
            else if (field === 'event') ev.type = val;
            else if (field === 'id') lastId = val;
          }
        }
        retry(1000);
      })
      .catch(() => retry(3000));
  }

  function openEvents() {
    if (S.es) return; // one stream at a time
    if (S.token && typeof fetch === 'function' && typeof TextDecoder !== 'undefined') {
      openEventsWithToken();
      return;
    }
    if (typeof EventSource === 'undefined') return;
    const es = new EventSource('/v1/events' + (S.lastEventId ? '?since=' + S.lastEventId : ''));
    S.es = es;
    es.onopen = () => { S.esOpen = true; updateConn(); };
    es.onerror = () => {
      S.esOpen = false;
      updateConn();
      // The browser retries by itself unless the stream was refused (HTTP error): then we do.
      if (es.readyState === EventSource.CLOSED && S.es === es) {
        S.es = null;
        setTimeout(openEvents, 3000);
      }
    };
    for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
    es.onmessage = onEvent;
  }

  // ---------- start ----------
  renderTimerEvents();
  renderFileEvents();
  markDirty('events');
  openEvents();
  poll();
})();
