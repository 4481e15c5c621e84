// cloudmha status page. Polls the manager's JSON API every 2 s and draws each
// cluster: badges, alerts, the topology as an SVG graph, the instances, the
// recent events and the failover timeline. No framework, no external files.
// Every server-provided string goes through textContent or setAttribute,
// never through innerHTML.
'use strict';

(() => {
  const POLL_MS = 2000;
  const HIDDEN_POLL_MS = 10000;
  const FETCH_TIMEOUT_MS = 15000;
  const HISTORY_MAX_AGE_MS = 30000;
  const LAG_WARN_S = 10; // an edge's lag turns amber from here
  const EVENTS_LIMIT = 500;
  const EVENTS_PER_CLUSTER = 12;
  const RUNS_PER_CLUSTER = 5;
  const TOKEN_KEY = 'cloudmha.token';
  const SVGNS = 'http://www.w3.org/2000/svg';

  const st = {
    token: null,
    history: new Map(), // cluster -> {key, at, runs}
    open: new Map(), // run id -> open?
    filter: '',
    lastOK: null,
    data: null, // the last answers: [clusters, alerts, events, health]
    timer: 0,
    inflight: false,
    again: false,
    loaded: false,
  };

  // ---- helpers ----

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids, false);
  }

  function s(tag, attrs, ...kids) {
    return build(document.createElementNS(SVGNS, tag), attrs, kids, true);
  }

  function build(el, attrs, kids, svg) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') {
        if (svg) el.setAttribute('class', v);
        else el.className = v;
      } else if (k === 'text') {
        el.textContent = String(v);
      } else if (k.startsWith('on')) {
        el.addEventListener(k.slice(2), v);
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of kids.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function trunc(str, n) {
    str = String(str || '');
    return str.length > n ? str.slice(0, n - 1) + '…' : str;
  }

  // Go's zero time is "0001-01-01T00:00:00Z".
  function parseTime(v) {
    if (!v || typeof v !== 'string' || v.startsWith('0001-')) return null;
    const ms = Date.parse(v.replace(/(\.\d{3})\d+/, '$1'));
    return Number.isNaN(ms) ? null : ms;
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  function clock(ms) {
    if (ms === null) return '—';
    const d = new Date(ms);
    const now = new Date();
    const t = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (d.toDateString() === now.toDateString()) return t;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + t;
  }

  function ago(ms) {
    if (ms === null) return '';
    const sec = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (sec < 60) return sec + 's ago';
    if (sec < 3600) return Math.floor(sec / 60) + 'm ago';
    if (sec < 86400) return Math.floor(sec / 3600) + 'h ' + Math.floor((sec % 3600) / 60) + 'm ago';
    return Math.floor(sec / 86400) + 'd ago';
  }

  function secs(n) {
    if (n === null || n === undefined) return '?';
    if (n < 60) return n + 's';
    if (n < 3600) return Math.floor(n / 60) + 'm ' + (n % 60) + 's';
    return Math.floor(n / 3600) + 'h ' + Math.floor((n % 3600) / 60) + 'm';
  }

  // ms -> "12 ms", "1.24 s", "2m 03s"
  function dur(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
    const sec = Math.round(ms / 1000);
    return Math.floor(sec / 60) + 'm ' + pad(sec % 60) + 's';
  }

  const SEV_RANK = { critical: 3, warning: 2, info: 1 };

  function stateClass(state) {
    switch (state) {
      case 'PING_OK':
        return 'ok';
      case 'FAILOVER_RUNNING':
        return 'info';
      case 'FAILOVER_ERROR':
        return 'crit';
      case 'PING_FAILING':
        return 'warn';
      default:
        return '';
    }
  }

  function verdictClass(v) {
    switch (v) {
      case 'healthy':
        return 'ok';
      case 'suspect':
        return 'warn';
      case 'unreachable_primary':
      case 'dead_primary':
        return 'crit';
      default:
        return '';
    }
  }

  function sevClass(sev) {
    return sev === 'critical' ? 'crit' : sev === 'warning' ? 'warn' : 'info';
  }

  // ---- token ----

  function readToken() {
    const frag = location.hash.replace(/^#/, '');
    if (frag) {
      const t = new URLSearchParams(frag).get('token');
      if (t) {
        st.token = t.trim();
        try {
          sessionStorage.setItem(TOKEN_KEY, st.token);
        } catch (e) {
          /* private mode: keep it in memory */
        }
        // Keep the token out of the address bar, bookmarks and screenshots.
        history.replaceState(null, '', location.pathname + location.search);
        return;
      }
    }
    try {
      st.token = sessionStorage.getItem(TOKEN_KEY);
    } catch (e) {
      st.token = null;
    }
  }

  function setToken(t) {
    st.token = t || null;
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      /* ignore */
    }
  }

  // ---- API ----

  class HTTPError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (st.token) headers.Authorization = 'Bearer ' + st.token;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    let resp;
    let text;
    try {
      resp = await fetch(path, { headers, cache: 'no-store', credentials: 'omit', signal: ctl.signal });
      text = await resp.text();
    } catch (e) {
      throw new HTTPError(0, e.name === 'AbortError' ? 'request timed out' : 'manager unreachable (' + e.message + ')');
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      const msg = body && body.error ? body.error : trunc(text, 200) || resp.statusText;
      throw new HTTPError(resp.status, msg);
    }
    return body;
  }

  async function health() {
    try {
      const r = await fetch('/healthz', { cache: 'no-store', credentials: 'omit' });
      const b = await r.json();
      return { ok: r.ok, error: b && b.error ? b.error : '' };
    } catch (e) {
      return { ok: false, error: 'manager unreachable' };
    }
  }

  // History is fetched again when a cluster's last failover or state
  // changes, and at most every 30 s otherwise.
  async function refreshHistory(clusters) {
    const now = Date.now();
    const names = new Set(clusters.map((c) => c.name));
    for (const k of [...st.history.keys()]) if (!names.has(k)) st.history.delete(k);
    const todo = clusters.filter((c) => {
      const key = (c.last_failover || '') + '|' + c.state;
      const cur = st.history.get(c.name);
      return !cur || cur.key !== key || now - cur.at > HISTORY_MAX_AGE_MS;
    });
    const batch = 8;
    for (let i = 0; i < todo.length; i += batch) {
      await Promise.all(
        todo.slice(i, i + batch).map(async (c) => {
          const key = (c.last_failover || '') + '|' + c.state;
          try {
            const runs = await api('/api/v1/clusters/' + encodeURIComponent(c.name) + '/history');
            st.history.set(c.name, { key, at: now, runs: Array.isArray(runs) ? runs : [] });
          } catch (e) {
            if (e.status === 401) throw e;
            const cur = st.history.get(c.name);
            st.history.set(c.name, { key, at: now, runs: cur ? cur.runs : [], error: e.message });
          }
        }),
      );
    }
  }

  // ---- polling ----

  // poll reads the API and renders, then schedules the next poll: every
  // 2 s, every 10 s while the tab is hidden, and not at all while a token is
  // needed (entering one polls again). Calls during a poll are folded into
  // one more poll right after it.
  async function poll() {
    clearTimeout(st.timer);
    if (st.inflight) {
      st.again = true;
      return;
    }
    st.inflight = true;
    let next = POLL_MS;
    try {
      const [clusters, alerts, events, hz] = await Promise.all([
        api('/api/v1/clusters'),
        api('/api/v1/alerts'),
        api('/api/v1/events?limit=' + EVENTS_LIMIT),
        health(),
      ]);
      await refreshHistory(clusters || []);
      st.lastOK = Date.now();
      st.data = [clusters || [], alerts || [], events || [], hz];
      showAuth(false);
      render(...st.data);
    } catch (e) {
      if (e.status === 401) {
        showAuth(true, e.message);
        next = null;
      } else {
        showError(e.message || String(e));
      }
    } finally {
      st.inflight = false;
      if (st.again) {
        st.again = false;
        next = 0;
      }
      if (next !== null) st.timer = setTimeout(poll, document.hidden && next ? HIDDEN_POLL_MS : next);
    }
  }

  function setConn(state, text) {
    $('conn').dataset.state = state;
    $('conn-text').textContent = text;
  }

  function showError(msg) {
    const b = $('banner');
    b.className = 'banner';
    b.textContent =
      'Cannot read the manager: ' + msg + (st.lastOK ? ' — showing data from ' + clock(st.lastOK) : '') + '. Retrying every 2 s.';
    b.hidden = false;
    setConn('error', st.lastOK ? 'stale since ' + clock(st.lastOK) : 'disconnected');
    $('clusters').classList.add('stale');
  }

  function showAuth(show, reason) {
    $('auth-prompt').hidden = !show;
    $('clusters').hidden = show;
    $('forget-token').hidden = !st.token;
    if (!show) return;
    $('banner').hidden = true;
    $('auth-reason').textContent = st.token
      ? 'The manager refused the token of this tab (' + reason + ').'
      : 'This manager requires an API token to show its status.';
    setConn('auth', 'token required');
    document.body.dataset.auth = 'required';
  }

  // ---- rendering ----

  function render(clusters, alerts, events, hz) {
    document.body.dataset.auth = 'ok';
    const banner = $('banner');
    if (!hz.ok) {
      banner.className = 'banner warn';
      banner.textContent = 'Manager not ready: ' + (hz.error || 'unknown reason');
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    setConn('ok', 'live · ' + clock(st.lastOK));

    const alertsBy = group(alerts, (a) => a.cluster);
    const eventsBy = group(events, (e) => e.cluster);

    renderSummary(clusters, alerts);

    const main = $('clusters');
    main.classList.remove('stale');
    const shown = clusters.filter((c) => !st.filter || c.name.toLowerCase().includes(st.filter));
    const nodes = shown.map((c) => renderCluster(c, alertsBy.get(c.name) || [], eventsBy.get(c.name) || []));
    if (clusters.length === 0) nodes.push(h('div', { class: 'empty', text: 'This manager watches no cluster.' }));
    else if (shown.length === 0) nodes.push(h('div', { class: 'empty', text: 'No cluster matches the filter.' }));
    const scroll = window.scrollY;
    main.replaceChildren(...nodes);
    window.scrollTo(0, scroll);

    const crit = alerts.filter((a) => a.severity === 'critical' && !a.acked).length;
    document.title = (crit ? '(' + crit + ') ' : '') + 'cloudmha status';
    st.loaded = true;
    document.body.dataset.loaded = 'true';
  }

  function group(list, key) {
    const m = new Map();
    for (const x of list) {
      const k = key(x);
      if (!m.has(k)) m.set(k, []);
      m.get(k).push(x);
    }
    return m;
  }

  function renderSummary(clusters, alerts) {
    const crit = alerts.filter((a) => a.severity === 'critical' && !a.acked).length;
    const warn = alerts.filter((a) => a.severity === 'warning' && !a.acked).length;
    const failing = clusters.filter((c) => c.state && c.state !== 'PING_OK').length;
    const items = [
      h('span', { class: 'badge outline', 'data-count': 'clusters', text: clusters.length + (clusters.length === 1 ? ' cluster' : ' clusters') }),
      failing ? h('span', { class: 'badge warn', 'data-count': 'not-ok', text: failing + ' not PING_OK' }) : null,
      crit ? h('span', { class: 'badge crit', 'data-count': 'critical', text: crit + ' critical' }) : null,
      warn ? h('span', { class: 'badge warn', 'data-count': 'warning', text: warn + ' warning' }) : null,
      !crit && !warn ? h('span', { class: 'badge ok', 'data-count': 'alerts', text: 'no open alerts' }) : null,
    ];
    $('summary').replaceChildren(...items.filter(Boolean));
  }

  function clusterSeverity(c, alerts) {
    let rank = 0;
    for (const a of alerts) if (!a.acked) rank = Math.max(rank, SEV_RANK[a.severity] || 0);
    if (c.state === 'FAILOVER_ERROR' || c.blocked || verdictClass(c.verdict) === 'crit') rank = Math.max(rank, 3);
    if (c.paused || stateClass(c.state) === 'warn') rank = Math.max(rank, 2);
    return rank === 3 ? 'critical' : rank === 2 ? 'warning' : 'ok';
  }

  function renderCluster(c, alerts, events) {
    const sev = clusterSeverity(c, alerts);
    const addr = c.address;
    return h(
      'section',
      {
        class: 'cluster',
        id: 'cluster-' + c.name,
        'data-cluster': c.name,
        'data-primary': c.primary || '',
        'data-state': c.state || '',
        'data-verdict': c.verdict || '',
        'data-paused': String(!!c.paused),
        'data-blocked': String(!!c.blocked),
        'data-severity': sev,
      },
      h(
        'div',
        { class: 'cluster-head' },
        h('h2', { text: c.name }),
        h(
          'div',
          { class: 'badges' },
          h('span', { class: 'badge ' + stateClass(c.state), 'data-badge': 'state', title: 'MHA status', text: c.state || 'UNKNOWN' }),
          c.verdict
            ? h('span', { class: 'badge ' + verdictClass(c.verdict), 'data-badge': 'verdict', title: c.verdict_reason || 'detector verdict', text: c.verdict.replace(/_/g, ' ') })
            : null,
          c.paused
            ? h('span', {
                class: 'badge warn',
                'data-badge': 'paused',
                title: 'Automatic failover paused' + (c.paused_by ? ' by ' + c.paused_by : '') + (c.pause_reason ? ': ' + c.pause_reason : ''),
                text: 'paused',
              })
            : null,
          c.blocked ? h('span', { class: 'badge crit', 'data-badge': 'blocked', title: 'Anti-flapping: acknowledge the last failover to allow another', text: 'blocked · ack needed' }) : null,
        ),
        h(
          'div',
          { class: 'facts' },
          h('span', {}, 'primary ', h('b', { 'data-fact': 'primary', text: c.primary || '—' })),
          addr
            ? h(
                'span',
                { 'data-fact': 'address' },
                'address ',
                h('b', { text: addr.client || '(' + addr.mover + ')' }),
                addr.client ? ' via ' + addr.mover : '',
                ' → ',
                h('b', { text: addr.holder || 'unknown' }),
              )
            : null,
          h('span', { 'data-fact': 'probe' }, 'probe ', h('b', { text: c.probe_ok ? (c.probe_latency_ms || 0).toFixed(1) + ' ms' : 'failing' })),
          c.last_failover ? h('span', {}, 'last failover ', h('b', { text: clock(parseTime(c.last_failover)) })) : null,
          h('span', { title: c.updated_at || '' }, 'updated ', h('b', { text: ago(parseTime(c.updated_at)) || '—' })),
        ),
        c.verdict_reason && verdictClass(c.verdict) !== 'ok' ? h('div', { class: 'reason', text: c.verdict_reason }) : null,
        c.paused && (c.paused_by || c.pause_reason)
          ? h('div', { class: 'reason', text: 'paused' + (c.paused_by ? ' by ' + c.paused_by : '') + (parseTime(c.paused_at) ? ' at ' + clock(parseTime(c.paused_at)) : '') + (c.pause_reason ? ': ' + c.pause_reason : '') })
          : null,
      ),
      renderAlerts(alerts),
      h(
        'div',
        { class: 'cluster-body' },
        h('div', { class: 'graph' }, renderGraph(c)),
        h('div', { class: 'instances' }, h('h3', { text: 'Instances' }), renderInstances(c)),
      ),
      h(
        'div',
        { class: 'cluster-foot' },
        h('section', { class: 'events' }, h('h3', { text: 'Recent events' }), renderEvents(events.slice(0, EVENTS_PER_CLUSTER))),
        h('section', { class: 'timeline' }, h('h3', { text: 'Failover history' }), renderHistory(c)),
      ),
    );
  }

  function renderAlerts(alerts) {
    if (!alerts.length) return null;
    const sorted = [...alerts].sort((a, b) => (SEV_RANK[b.severity] || 0) - (SEV_RANK[a.severity] || 0));
    return h(
      'ul',
      { class: 'cluster-alerts' },
      sorted.map((a) =>
        h(
          'li',
          {
            class: a.acked ? 'acked' : '',
            'data-alert': a.name,
            'data-severity': a.severity,
            'data-instance': a.instance || '',
            'data-acked': String(!!a.acked),
          },
          h('span', {}, h('span', { class: 'badge ' + sevClass(a.severity), text: a.severity })),
          h('span', { class: 'name', text: a.name }),
          h('span', { class: 'mono', text: a.instance || '' }),
          h('span', { class: 'summary-text', text: a.summary }),
          h('span', { class: 'muted', title: a.since, text: (a.acked ? 'acked · ' : '') + 'since ' + clock(parseTime(a.since)) + ' (' + ago(parseTime(a.since)) + ')' }),
        ),
      ),
    );
  }

  // ---- topology graph ----

  const NODE_W = 188;
  const NODE_H = 60;
  const SLOT_W = 206;
  const ROW_H = 128;
  const TOP = 34;
  const PAD = 10;

  function nodeState(i) {
    if (!i.reachable) return 'unreachable';
    if (i.role !== 'primary' && (!i.io_running || !i.sql_running)) return 'stopped';
    if (i.errant) return 'errant';
    return 'ok';
  }

  function edgeOf(i) {
    const lag = i.lag_seconds === undefined || i.lag_seconds === null ? null : i.lag_seconds;
    if (!i.reachable) return { state: 'broken', label: 'no data', lag };
    if (!i.io_running && !i.sql_running) return { state: 'stopped', label: 'stopped', lag };
    if (!i.io_running) return { state: 'stopped', label: 'IO stopped', lag };
    if (!i.sql_running) return { state: 'stopped', label: 'SQL stopped', lag };
    if (lag === null) return { state: 'ok', label: 'lag ?', lag };
    return { state: lag >= LAG_WARN_S ? 'lagging' : 'ok', label: 'lag ' + secs(lag), lag };
  }

  // layout places the primary's replication tree from the top, then the
  // instances not attached to it (unknown, or replicating from elsewhere)
  // in rows below, marked "detached".
  function layout(c) {
    const insts = c.instances || [];
    const byName = new Map(insts.map((i) => [i.name, i]));
    let root = byName.has(c.primary) ? c.primary : null;
    if (!root) {
      const p = insts.find((i) => i.role === 'primary');
      root = p ? p.name : null;
    }
    const kids = new Map();
    for (const i of insts) {
      if (i.name === root || !i.source || i.source === i.name || !byName.has(i.source)) continue;
      if (!kids.has(i.source)) kids.set(i.source, []);
      kids.get(i.source).push(i);
    }
    for (const list of kids.values()) list.sort((a, b) => a.name.localeCompare(b.name));

    const pos = new Map();
    let slot = 0;
    let maxSlot = 0;
    let maxDepth = -1;
    const place = (name, depth) => {
      pos.set(name, null); // mark before children: cycles end here
      const xs = [];
      for (const k of kids.get(name) || []) if (!pos.has(k.name)) xs.push(place(k.name, depth + 1));
      const x = xs.length ? (xs[0] + xs[xs.length - 1]) / 2 : slot++;
      pos.set(name, { x, depth });
      maxSlot = Math.max(maxSlot, slot);
      maxDepth = Math.max(maxDepth, depth);
      return x;
    };
    if (root) place(root, 0);
    const rest = insts.filter((i) => !pos.has(i.name)).sort((a, b) => a.name.localeCompare(b.name));
    let detachedDepth = null;
    if (rest.length) {
      detachedDepth = maxDepth + 1;
      slot = 0;
      for (const i of rest) if (!pos.has(i.name) && (!i.source || !byName.has(i.source))) place(i.name, detachedDepth);
      for (const i of rest) if (!pos.has(i.name)) place(i.name, detachedDepth);
    }
    return { byName, root, pos, slots: Math.max(maxSlot, 1), depth: maxDepth + 1, detachedDepth };
  }

  function renderGraph(c) {
    const L = layout(c);
    const width = Math.max(L.slots * SLOT_W + 2 * PAD, 360);
    const offset = (width - L.slots * SLOT_W) / 2;
    const height = TOP + Math.max(L.depth, 1) * ROW_H - (ROW_H - NODE_H) + 30;
    const cx = (p) => offset + (p.x + 0.5) * SLOT_W;
    const cy = (p) => TOP + p.depth * ROW_H;
    const markerID = 'arrow-' + c.name.replace(/[^A-Za-z0-9_-]/g, '_');
    const holder = c.address && c.address.holder ? c.address.holder : '';

    const svg = s('svg', {
      class: 'topology',
      'data-cluster': c.name,
      viewBox: '0 0 ' + width + ' ' + height,
      width,
      height,
      role: 'img',
      'aria-label': 'Replication topology of ' + c.name,
    });
    svg.append(
      s('defs', {}, s('marker', { id: markerID, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { class: 'arrow', d: 'M0,0 L10,5 L0,10 z' }))),
    );
    if (!(c.instances || []).length) {
      svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'detached-label', text: 'no instance data' }));
      return svg;
    }
    if (L.detachedDepth !== null && L.detachedDepth > 0) {
      const y = TOP + L.detachedDepth * ROW_H - 14;
      svg.append(s('text', { x: PAD, y, class: 'detached-label', text: 'not replicating from ' + (L.root || 'the primary') }));
    }

    // Edges first, under the nodes.
    for (const i of c.instances) {
      const p = L.pos.get(i.name);
      const sp = i.source ? L.pos.get(i.source) : null;
      if (!p || !sp || i.name === L.root) continue;
      const e = edgeOf(i);
      const x1 = cx(sp);
      const y1 = cy(sp) + NODE_H;
      const x2 = cx(p);
      const y2 = cy(p) - 2;
      // The label sits 40% down the edge, clear of an address tag above
      // the replica.
      const lx = x1 + (x2 - x1) * 0.4;
      const ly = y1 + (y2 - y1) * 0.4;
      const lw = e.label.length * 7 + 10;
      svg.append(
        s(
          'g',
          { class: 'edge', 'data-from': i.source, 'data-to': i.name, 'data-state': e.state, 'data-lag': e.lag === null ? '' : e.lag },
          s('line', { x1, y1, x2, y2, 'marker-end': 'url(#' + markerID + ')' }),
          s('rect', { class: 'edge-label-bg', x: lx - lw / 2, y: ly - 8, width: lw, height: 16, rx: 3 }),
          s('text', { x: lx, y: ly + 4, 'text-anchor': 'middle', class: 'edge-label', text: e.label }),
        ),
      );
    }

    for (const i of c.instances) {
      const p = L.pos.get(i.name);
      if (!p) continue;
      svg.append(renderNode(i, cx(p) - NODE_W / 2, cy(p), i.name === holder, c));
    }
    return svg;
  }

  function renderNode(i, x, y, isHolder, c) {
    const state = nodeState(i);
    const role = i.role || 'unknown';
    let status;
    if (state === 'unreachable') status = 'unreachable' + (i.error ? ': ' + i.error : '');
    else if (state === 'stopped') status = 'IO ' + (i.io_running ? 'on' : 'STOPPED') + ' · SQL ' + (i.sql_running ? 'on' : 'STOPPED');
    else if (state === 'errant') status = 'errant GTIDs';
    else if (role === 'primary') status = (i.read_only ? 'read-only' : 'writable') + (i.semi_sync ? ' · semi-sync' : '');
    else status = (i.read_only ? 'read-only' : 'WRITABLE') + (i.semi_sync ? ' · semi-sync' : '');

    const tip = [
      i.name + ' (' + role + ')',
      i.addr + (i.zone ? ' · zone ' + i.zone : ''),
      i.version ? 'version ' + i.version : '',
      i.source ? 'source ' + i.source : '',
      i.gtid ? 'GTID ' + i.gtid : '',
      i.errant ? 'errant ' + i.errant : '',
      i.error ? 'error: ' + i.error : '',
      i.repl_error ? 'replication error: ' + i.repl_error : '',
    ]
      .filter(Boolean)
      .join('\n');

    const roleW = role.length * 7 + 12;
    const g = s(
      'g',
      {
        class: 'node',
        'data-instance': i.name,
        'data-role': role,
        'data-state': state,
        'data-reachable': String(!!i.reachable),
        'data-lag': i.lag_seconds === undefined || i.lag_seconds === null ? '' : i.lag_seconds,
        'data-holder': isHolder ? 'true' : null,
        transform: 'translate(' + x + ',' + y + ')',
      },
      s('title', { text: tip }),
      s('rect', { class: 'box', x: 0, y: 0, width: NODE_W, height: NODE_H, rx: 5 }),
      s('text', { class: 'title', x: 10, y: 19, text: trunc(i.name, 16) }),
      s('rect', { class: 'role-bg', x: NODE_W - roleW - 8, y: 7, width: roleW, height: 15, rx: 3 }),
      s('text', { class: 'role', x: NODE_W - roleW / 2 - 8, y: 18, 'text-anchor': 'middle', text: role }),
      s('text', { class: 'sub', x: 10, y: 35, text: trunc(i.addr + (i.zone ? ' · ' + i.zone : ''), 25) }),
      s('text', { class: 'status', x: 10, y: 51, text: trunc(status, state === 'ok' ? 29 : 26) }),
    );
    if (isHolder && c.address) {
      const a = c.address;
      const label = '⇄ ' + (a.client ? a.client + ' · ' : '') + a.mover;
      const w = Math.min(NODE_W + 40, label.length * 7 + 14);
      const onPrimary = i.name === c.primary;
      const ty = -24;
      g.append(
        s(
          'g',
          { class: 'address', 'data-address': a.client || '', 'data-mover': a.mover, 'data-holder': i.name, 'data-on-primary': String(onPrimary) },
          s('title', { text: 'Client address ' + (a.client || '(none)') + ' held by ' + i.name + ' (mover ' + a.mover + ')' }),
          s('rect', { x: (NODE_W - w) / 2, y: ty, width: w, height: 19, rx: 9 }),
          s('text', { x: NODE_W / 2, y: ty + 13.5, 'text-anchor': 'middle', text: label }),
        ),
      );
    }
    return g;
  }

  // ---- instances table ----

  function renderInstances(c) {
    const insts = [...(c.instances || [])].sort((a, b) => {
      const ra = a.name === c.primary ? 0 : 1;
      const rb = b.name === c.primary ? 0 : 1;
      return ra - rb || a.name.localeCompare(b.name);
    });
    if (!insts.length) return h('div', { class: 'none', text: 'No instance data yet.' });
    const yes = (b) => (b ? 'yes' : 'no');
    const cols = ['Instance', 'Role', 'Address', 'Zone', 'Source', 'IO / SQL', 'Lag', 'RO', 'Semi-sync', 'Version'];
    return h(
      'table',
      { class: 'instance-table' },
      h('thead', {}, h('tr', {}, cols.map((t) => h('th', { text: t })))),
      h(
        'tbody',
        {},
        insts.map((i) => {
          const state = nodeState(i);
          const noRepl = (i.role === 'primary' && !i.source) || !i.reachable;
          const notes = [i.reachable ? '' : 'unreachable', i.error, i.repl_error, i.errant ? 'errant GTIDs: ' + i.errant : ''].filter(Boolean).join(' · ');
          const row = h(
            'tr',
            { class: state + (notes ? ' has-note' : ''), 'data-instance': i.name },
            h('td', { title: i.gtid ? 'GTID ' + i.gtid : '' }, h('b', { text: i.name })),
            h('td', { text: i.role }),
            h('td', { class: 'mono', text: i.addr }),
            h('td', { text: i.zone || '' }),
            h('td', { text: i.source || '' }),
            h('td', { class: 'repl', text: noRepl ? '—' : (i.io_running ? 'on' : 'OFF') + ' / ' + (i.sql_running ? 'on' : 'OFF') }),
            h('td', { class: 'num', 'data-lag': i.lag_seconds ?? '', text: noRepl ? '—' : secs(i.lag_seconds ?? null) }),
            h('td', { text: i.reachable ? yes(i.read_only) : '—' }),
            h('td', { text: i.reachable ? yes(i.semi_sync) : '—' }),
            h('td', { class: 'mono', text: i.version || '' }),
          );
          if (!notes) return row;
          return [row, h('tr', { class: 'note-row ' + state, 'data-note-for': i.name }, h('td', { colspan: cols.length, class: 'err', text: notes }))];
        }),
      ),
    );
  }

  // ---- events ----

  function renderEvents(events) {
    if (!events.length) return h('div', { class: 'none', text: 'No recent events.' });
    return h(
      'table',
      { class: 'event-table' },
      h(
        'tbody',
        {},
        events.map((e) =>
          h(
            'tr',
            { 'data-kind': e.kind, 'data-severity': e.severity, 'data-id': e.id || null },
            h('td', { class: 'time', title: e.time, text: clock(parseTime(e.time)) }),
            h('td', {}, h('span', { class: 'sev ' + (e.severity || ''), title: e.severity })),
            h('td', { class: 'mono', text: e.kind }),
            h('td', { class: 'wrap', text: e.title }),
            h(
              'td',
              { class: 'fields' },
              Object.entries(e.fields || {})
                .sort(([a], [b]) => a.localeCompare(b))
                .map(([k, v]) => k + '=' + v)
                .join(' '),
            ),
          ),
        ),
      ),
    );
  }

  // ---- failover timeline ----

  function renderHistory(c) {
    const hist = st.history.get(c.name);
    if (!hist) return h('div', { class: 'none', text: 'Loading…' });
    if (!hist.runs.length) return h('div', { class: 'none', text: hist.error ? 'History unavailable: ' + hist.error : 'No failover or switchover yet.' });
    return h(
      'div',
      { class: 'runs' },
      hist.runs.slice(0, RUNS_PER_CLUSTER).map((r, idx) => renderRun(r, idx)),
      hist.runs.length > RUNS_PER_CLUSTER ? h('div', { class: 'none', text: hist.runs.length - RUNS_PER_CLUSTER + ' older runs: GET /api/v1/clusters/' + c.name + '/history' }) : null,
    );
  }

  function renderRun(r, idx) {
    if (!r || typeof r !== 'object') return null;
    const t0 = parseTime(r.started);
    const t1 = parseTime(r.finished);
    const steps = Array.isArray(r.steps) ? r.steps : [];
    const ok = !r.error && t1 !== null;
    const id = r.id || r.kind + '-' + r.started;
    let total = t0 !== null && t1 !== null ? t1 - t0 : 0;
    for (const x of steps) {
      const s0 = parseTime(x.started);
      const end = (t0 !== null && s0 !== null ? s0 - t0 : 0) + (x.elapsed || 0) / 1e6;
      total = Math.max(total, end);
    }
    const open = st.open.has(id) ? st.open.get(id) : idx === 0;
    const det = h(
      'details',
      { class: 'run', 'data-run': id, 'data-kind': r.kind || '', 'data-ok': String(ok), open: open },
      h(
        'summary',
        {},
        h('span', { class: 'badge ' + (r.kind === 'failover' ? 'warn' : 'info'), text: r.kind || 'run' }),
        h('b', { text: (r.old_primary || '?') + ' → ' + (r.new_primary || '?') }),
        h('span', { class: 'badge ' + (ok ? 'ok' : 'crit'), text: ok ? 'ok' : t1 === null && !r.error ? 'unfinished' : 'failed' }),
        h('span', { class: 'muted', title: r.started || '', text: clock(t0) }),
        h('span', { class: 'muted', text: 'took ' + dur(t0 !== null && t1 !== null ? t1 - t0 : null) }),
        r.write_block ? h('span', { class: 'muted', text: 'writes blocked ' + dur(r.write_block / 1e6) }) : null,
        r.salvaged ? h('span', { class: 'muted', text: r.salvaged + ' salvaged' }) : null,
        r.lost ? h('span', { class: 'lost', title: r.lost, text: 'LOST ' + trunc(r.lost, 40) }) : null,
      ),
      r.error ? h('div', { class: 'none err', text: 'error: ' + r.error }) : null,
      r.failed && r.failed.length ? h('div', { class: 'none err', text: 'needs attention: ' + r.failed.join('; ') }) : null,
      h(
        'div',
        { class: 'steps' },
        steps.map((stp) => {
          const s0 = parseTime(stp.started);
          const off = t0 !== null && s0 !== null ? s0 - t0 : 0;
          const ms = (stp.elapsed || 0) / 1e6;
          const status = stp.error ? 'error' : /^skipped/.test(stp.note || '') ? 'skipped' : 'ok';
          const bar = h('div', { class: 'bar' });
          if (total > 0) {
            bar.style.left = Math.min(100, (off / total) * 100).toFixed(2) + '%';
            bar.style.width = Math.max(0.4, (ms / total) * 100).toFixed(2) + '%';
          } else {
            bar.style.left = '0';
            bar.style.width = '100%';
          }
          const note = stp.error || stp.note;
          return h(
            'div',
            { class: 'step', 'data-step': stp.name, 'data-status': status, 'data-elapsed-ms': Math.round(ms) },
            h('span', { class: 'name', title: stp.name + (stp.kind ? ' (' + stp.kind + ')' : '') + (stp.server ? ' on ' + stp.server : ''), text: stp.name }),
            h('span', { class: 'dur', text: dur(ms) }),
            h('div', { class: 'track' }, bar),
            note ? h('div', { class: 'note', text: note }) : null,
          );
        }),
        steps.length ? null : h('div', { class: 'none', text: 'No step recorded.' }),
      ),
    );
    det.addEventListener('toggle', () => st.open.set(id, det.open));
    return det;
  }

  // ---- start ----

  function start() {
    readToken();
    $('forget-token').hidden = !st.token;
    $('forget-token').addEventListener('click', () => {
      setToken(null);
      $('forget-token').hidden = true;
      poll();
    });
    $('auth-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('auth-token').value.trim();
      $('auth-token').value = '';
      if (!t) return;
      setToken(t);
      poll();
    });
    $('filter').addEventListener('input', (ev) => {
      st.filter = ev.target.value.trim().toLowerCase();
      if (st.data) render(...st.data);
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && $('auth-prompt').hidden) poll();
    });
    window.addEventListener('hashchange', () => {
      readToken();
      poll();
    });
    poll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
