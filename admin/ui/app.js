// The reeve status page. It polls the node's JSON API and redraws the
// tables; no framework, no build step. Data values are always set with
// textContent, never parsed as HTML: topic names and labels come from users.
'use strict';

(() => {
  const POLL_MS = 1500;   // between the end of one refresh and the next
  const TIMEOUT_MS = 4000; // a refresh not answered by then counts as unreachable

  const $ = (id) => document.getElementById(id);
  let lastOK = 0;       // Date.now() of the last complete refresh
  let lastParts = null; // the last /v1/partitions answer, for the filter
  let failing = '';     // why the last refresh failed, '' when it did not
  let locked = false;   // the API answered 401: it wants the admin token

  // The admin token, when the node has one (admin.token_file): typed into
  // the form by the operator, kept for this tab only, sent on every fetch.
  const TOKEN_KEY = 'reeve-admin-token';
  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

  // el builds an element: attrs holds attributes (class, data-*, title…),
  // booleans written "true" or "false", undefined and null left out;
  // children are nodes or strings (strings become text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c !== undefined && c !== null) e.append(c);
    }
    return e;
  }

  // td is a table cell with the column's name for the narrow-screen layout.
  const td = (label, ...children) => el('td', { 'data-label': label }, ...children);

  function fill(table, rows) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...rows);
  }

  async function getJSON(path, signal) {
    const headers = { Accept: 'application/json' };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const r = await fetch(path, { signal, cache: 'no-store', headers });
    let body = null;
    try { body = await r.json(); } catch { /* not JSON: report the status below */ }
    if (r.status === 401) throw Object.assign(new Error('the admin token is missing or wrong'), { unauthorized: true });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}${body && body.error ? ': ' + body.error : ''}`);
    return body;
  }

  function age(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 7200000) return `${Math.round(ms / 60000)} min`;
    return `${Math.round(ms / 3600000)} h`;
  }

  function clock(iso) {
    const d = new Date(iso);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  const badge = (cls, text, title) => el('span', { class: `badge ${cls}`, title }, text);

  function renderSummary(st, parts, pol) {
    const active = st.nodes.filter((n) => n.state === 'active');
    const up = active.filter((n) => n.alive).length;
    const set = (id, text, bad) => { const e = $(id); e.textContent = text; e.dataset.bad = bad ? 'true' : 'false'; };
    set('stat-nodes', `${up} / ${active.length}`, up < active.length);
    set('stat-partitions', String(st.partitions.total), false);
    set('stat-offline', String(st.partitions.offline), st.partitions.offline > 0);
    set('stat-urp', String(st.partitions.under_replicated), st.partitions.under_replicated > 0);
    set('stat-fallbacks', String(pol.fallbacks), pol.fallbacks > 0);
    $('cluster-name').textContent = st.cluster;
    $('seen-from').textContent = `Seen from node ${st.node_id} · ${st.version}${st.ready ? '' : ' · not ready'}`;
    document.title = `${up < active.length ? '⚠ ' : ''}reeve ${st.cluster} · node ${st.node_id}`;
  }

  function renderNodes(st) {
    fill('nodes', st.nodes.map((n) => {
      const self = n.id === st.node_id;
      const labels = Object.entries(n.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ');
      return el('tr', { 'data-node-id': n.id, 'data-alive': n.alive, 'data-state': n.state, 'data-self': self, class: n.alive ? '' : 'down' },
        el('th', { scope: 'row', 'data-label': 'Node' }, `node ${n.id}`, self ? el('span', { class: 'tag' }, 'this page') : null),
        td('Liveness', n.alive ? badge('ok', 'up') : badge('bad', 'down', 'no heartbeat within the leader timeout')),
        td('State', n.state),
        td('Heartbeat age', self ? '—' : age(n.heartbeat_age_ms)),
        td('Partitions led', String(n.partitions_led)),
        td('Raft groups led', String(n.raft_groups_led)),
        td('Kafka address', el('code', {}, n.kafka_address || '—')),
        td('Labels', labels || '—'));
    }));
  }

  function replicaChip(r) {
    const state = [r.leader ? 'leader' : null, r.in_isr ? 'in sync' : 'out of sync', r.alive ? 'alive' : 'down',
      r.log_end_offset >= 0 ? `log end ${r.log_end_offset}` : 'log end unknown'].filter(Boolean).join(', ');
    const cls = ['replica', r.leader ? 'leader' : '', r.in_isr ? 'isr' : 'oos', r.alive ? '' : 'dead'].join(' ').trim();
    const lag = r.leader ? '★' : r.lag >= 0 ? String(r.lag) : '?';
    return el('span', { class: cls, title: `node ${r.node}: ${state}`, 'data-node': r.node, 'data-lag': r.lag,
      'data-in-isr': r.in_isr, 'data-alive': r.alive },
    String(r.node), el('small', {}, lag));
  }

  function renderPartitions(parts) {
    const q = $('partition-filter').value.trim().toLowerCase();
    const rows = [];
    for (const p of parts.partitions) {
      const name = `${p.topic}-${p.partition}`;
      if (q && !name.toLowerCase().includes(q)) continue;
      const offline = p.leader === 0;
      const urp = p.isr.length < p.replicas.length;
      rows.push(el('tr', { 'data-partition': name, 'data-topic': p.topic, 'data-leader': p.leader,
        'data-epoch': p.leader_epoch, 'data-isr': p.isr.join(','), class: offline ? 'down' : urp ? 'warn' : '' },
      el('th', { scope: 'row', 'data-label': 'Partition' }, name),
      td('Leader', offline ? badge('bad', 'offline', 'no eligible leader') : `node ${p.leader}`),
      td('ISR', p.isr.length ? p.isr.join(', ') : '—', ...(urp ? [' ', badge('warn', 'under-replicated')] : [])),
      td('Replicas (lag)', el('span', { class: 'replicas' }, ...p.replica_states.map(replicaChip))),
      td('Leader epoch', String(p.leader_epoch)),
      td('Max lag', p.max_lag >= 0 ? String(p.max_lag) : '—'),
      td('Raft group', String(p.group))));
    }
    fill('partitions', rows);
    $('partitions-empty').hidden = parts.partitions.length > 0;
    $('partitions').parentElement.hidden = parts.partitions.length === 0;
    $('partitions-note').textContent = parts.offsets
      ? 'Leader, in-sync replicas, and how many messages each replica\'s log is behind the leader\'s (★ leader, ? unknown).'
      : 'Leader and in-sync replicas (log end offsets were not asked).';
  }

  function renderElections(st) {
    const recs = st.elections.slice().reverse();
    fill('elections', recs.map((e) => {
      const to = e.to === 0 ? 'none' : `node ${e.to}`;
      const from = e.from === 0 ? 'none' : `node ${e.from}`;
      return el('tr', { 'data-partition': `${e.topic}-${e.partition}`, 'data-reason': e.reason, 'data-to': e.to,
        'data-committed': e.committed, class: e.committed ? '' : 'down' },
      td('Time', el('time', { datetime: e.time }, clock(e.time))),
      td('Partition', `${e.topic}-${e.partition}`),
      td('Reason', el('span', { title: e.why }, e.reason.replaceAll('_', ' ')), el('div', { class: 'why' }, e.why)),
      td('From → to', `${from} → ${to}`, ...(e.unclean ? [' ', badge('warn', 'unclean')] : [])),
      td('Epoch', String(e.leader_epoch)),
      td('Policy', e.policy),
      td('Latency', `${e.latency_ms.toFixed(1)} ms`),
      td('Result', e.committed ? badge('ok', 'committed') : badge('bad', 'failed', e.error), e.committed ? null : el('div', { class: 'why' }, e.error)));
    }));
    $('elections-empty').hidden = recs.length > 0;
    $('elections').parentElement.hidden = recs.length === 0;
    $('elections-note').textContent = `Decided by node ${st.node_id} while it controlled the partition's Raft group, newest first.`;
  }

  function renderPolicies(pol) {
    fill('policies', pol.rules.map((r) => el('tr', { 'data-policy': r.policy, 'data-running': r.running, class: r.last_error ? 'warn' : '' },
      el('th', { scope: 'row', 'data-label': 'Topics' }, el('code', {}, r.topics)),
      td('Policy', r.policy, r.settings && Object.keys(r.settings).length
        ? el('div', { class: 'why' }, Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(' ')) : null),
      td('State', r.running ? badge('ok', 'running') : badge('warn', 'first-isr stands in')),
      td('Module digest', r.digest ? el('code', { title: r.digest }, r.digest.slice(0, 12))
        : r.policy === 'first-isr' ? 'built-in' : el('span', { title: 'no module of this name is loaded' }, '— not loaded')),
      td('Instance resets', String(r.instance_resets)),
      td('Last error', r.last_error || '—'))));
    $('policies-empty').hidden = pol.rules.length > 0;
    $('policies').parentElement.hidden = pol.rules.length === 0;
    $('policies-note').textContent = `Modules loaded ${pol.modules_loaded}, refused ${pol.modules_refused}, decisions first-isr made in place of a failed policy ${pol.fallbacks}` +
      (pol.policy_dir ? ` · folder ${pol.policy_dir}` : '');
  }

  function showConn() {
    const c = $('conn');
    $('token-form').hidden = !locked;
    if (locked) {
      c.dataset.state = 'locked';
      document.body.dataset.conn = 'locked';
      c.textContent = 'Locked: this node wants its admin token';
      return;
    }
    if (failing) {
      c.dataset.state = 'down';
      document.body.dataset.conn = 'down';
      const since = lastOK ? `; showing its data from ${age(Date.now() - lastOK)} ago` : '';
      c.textContent = `Unreachable: ${location.host} is not answering (${failing})${since}`;
      return;
    }
    c.dataset.state = 'ok';
    document.body.dataset.conn = 'ok';
    const since = Date.now() - lastOK;
    c.textContent = since < 1000 ? 'Live · updated just now' : `Live · updated ${age(since)} ago`;
  }

  async function refresh() {
    const sent = token();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const [st, parts, pol] = await Promise.all([
        getJSON('v1/status', ctl.signal),
        getJSON('v1/partitions?stale=true', ctl.signal),
        getJSON('v1/policies', ctl.signal),
      ]);
      st.nodes = st.nodes || [];
      st.elections = st.elections || [];
      for (const p of parts.partitions) {
        p.isr = p.isr || [];
        p.replicas = p.replicas || [];
      }
      lastParts = parts;
      renderSummary(st, parts, pol);
      renderNodes(st);
      renderPartitions(parts);
      renderElections(st);
      renderPolicies(pol);
      lastOK = Date.now();
      failing = '';
      locked = false;
      document.body.dataset.refreshed = String(lastOK);
    } catch (e) {
      failing = e.name === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s`
        : e instanceof TypeError ? 'connection failed' : e.message;
      if (e.unauthorized && token() === sent) { // not a token typed meanwhile
        if (!locked) {
          $('token-why').textContent = sent
            ? 'This node refused that admin token: type the one in the file its admin.token_file names.'
            : 'This node wants its admin token before it shows the cluster: the one in the file its admin.token_file names.';
          locked = true;
          showConn();
          $('token').focus();
        }
        sessionStorage.removeItem(TOKEN_KEY);
      }
    } finally {
      clearTimeout(timer);
      showConn();
      setTimeout(refresh, POLL_MS);
    }
  }

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    locked = false; // the next refresh, within POLL_MS, sends it
    failing = '';
    $('token-form').hidden = true;
    $('conn').textContent = 'Trying the token…';
  });
  $('partition-filter').addEventListener('input', () => { if (lastParts) renderPartitions(lastParts); });
  setInterval(() => { if (lastOK || failing) showConn(); }, 500);
  refresh();
})();
