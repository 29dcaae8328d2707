// The broker's dashboard: polls the management API (/api, bearer token) every two seconds and draws what it gets.
// No external assets: everything is this file, dashboard.css and index.html, served by the node.
'use strict';
(() => {
  const PollMs = 2000;
  const HistoryMs = 15 * 60 * 1000;
  const $ = (id) => document.getElementById(id);
  const history = new Map(); // node address -> [{ t, in, out }] (rates per second)
  const last = new Map();    // node address -> { t, in, out } (counters at the previous poll)
  let timer = null;
  let selected = null;
  let clients = [];

  const token = () => sessionStorage.getItem('broker-token');

  async function api(path, method = 'GET') {
    const response = await fetch('/api' + path, { method, headers: { Authorization: 'Bearer ' + token() } });
    if (response.status === 401) { signOut('wrong token'); throw new Error('unauthorized'); }
    const body = await response.json();
    if (!response.ok && response.status !== 404) throw new Error(body.error || response.statusText);
    return body;
  }

  function cell(row, text) { const td = document.createElement('td'); td.textContent = text; row.appendChild(td); return td; }

  function fill(tableId, rows, render) {
    const body = $(tableId).querySelector('tbody');
    body.replaceChildren(...rows.map((r) => { const tr = document.createElement('tr'); render(tr, r); return tr; }));
  }

  function renderMembers(m) {
    $('member-count').textContent = `(${m.count} members)`;
    fill('members', m.members, (tr, x) => {
      cell(tr, x.address + (x.self ? ' (this node)' : ''));
      cell(tr, x.status); cell(tr, x.reachable ? 'yes' : 'NO'); cell(tr, x.leader ? 'leader' : '');
    });
  }

  function renderNodes(stats) {
    const now = Date.now();
    for (const n of stats.nodes) {
      const prev = last.get(n.address);
      if (prev && now > prev.t) {
        const seconds = (now - prev.t) / 1000;
        const points = history.get(n.address) || [];
        points.push({ t: now, in: Math.max(0, n.messagesIn - prev.in) / seconds, out: Math.max(0, n.messagesOut - prev.out) / seconds });
        while (points.length && points[0].t < now - HistoryMs) points.shift();
        history.set(n.address, points);
      }
      last.set(n.address, { t: now, in: n.messagesIn, out: n.messagesOut });
    }
    fill('nodes', stats.nodes, (tr, n) => {
      const points = history.get(n.address) || [];
      const rate = points.length ? points[points.length - 1] : { in: 0, out: 0 };
      cell(tr, n.address); cell(tr, n.connections); cell(tr, n.sessionsOnline); cell(tr, n.sessionsOffline);
      cell(tr, n.subscriptions); cell(tr, n.retained); cell(tr, n.queued); cell(tr, n.inflight);
      cell(tr, rate.in.toFixed(1)); cell(tr, rate.out.toFixed(1));
      cell(tr, Object.entries(n.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || '0');
    });
    renderCharts(stats.nodes.map((n) => n.address));
  }

  // The x axis spans the history there is (at least 10 s), up to the last 15 minutes, then slides.
  function polyline(points, key, max, now, span) {
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    line.setAttribute('class', key);
    line.setAttribute('points', points.map((p) =>
      `${(300 * (1 - (now - p.t) / span)).toFixed(1)},${(88 - 84 * p[key] / max).toFixed(1)}`).join(' '));
    return line;
  }

  function renderCharts(addresses) {
    const now = Date.now();
    $('charts').replaceChildren(...addresses.map((address) => {
      const points = history.get(address) || [];
      const max = Math.max(1, ...points.map((p) => Math.max(p.in, p.out)));
      const span = Math.min(HistoryMs, Math.max(10000, points.length ? now - points[0].t : 0));
      const box = document.createElement('div');
      box.className = 'chart';
      box.dataset.node = address;
      box.dataset.points = points.length;
      box.dataset.max = max.toFixed(1);
      box.dataset.lastIn = points.length ? points[points.length - 1].in.toFixed(2) : '0';
      const title = document.createElement('div');
      title.className = 'title';
      title.innerHTML = '<span></span><span></span>';
      title.children[0].textContent = address.replace(/^akka\.tcp:\/\/broker@/, '');
      title.children[1].textContent = `last ${span < 120000 ? Math.round(span / 1000) + ' s' : Math.round(span / 60000) + ' min'}, max ${max.toFixed(1)}/s`;
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      svg.setAttribute('viewBox', '0 0 300 90');
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.append(polyline(points, 'in', max, now, span), polyline(points, 'out', max, now, span));
      box.append(title, svg);
      return box;
    }));
  }

  function renderClients() {
    const query = $('search').value.trim().toLowerCase();
    const shown = clients.filter((c) => c.clientId.toLowerCase().includes(query));
    $('client-count').textContent = `(${clients.length} connected${query ? `, ${shown.length} shown` : ''})`;
    fill('clients', shown, (tr, c) => {
      tr.className = 'clickable';
      tr.dataset.clientId = c.clientId;
      cell(tr, c.clientId); cell(tr, c.node); cell(tr, c.remoteAddress); cell(tr, c.protocolVersion);
      cell(tr, new Date(c.connectedAt).toLocaleTimeString());
      tr.addEventListener('click', () => showClient(c.clientId));
    });
  }

  async function showClient(clientId) {
    selected = clientId;
    const box = $('client');
    box.hidden = false;
    const c = await api('/clients/' + encodeURIComponent(clientId));
    if (selected !== clientId) return;
    box.replaceChildren();
    const h = document.createElement('h3');
    h.textContent = clientId;
    const dl = document.createElement('dl');
    const s = c.session || {};
    const rows = [
      ['connected', c.connected ? `yes, ${c.connection.remoteAddress} (${c.connection.protocolVersion})` : 'no'],
      ['connection node', c.connected ? c.connection.node : '-'],
      ['session node', s.node || '?'],
      ['session', s.exists ? (s.persistent ? `persistent, expiry ${s.sessionExpiry} s` : 'clean') : (c.error || 'none')],
      ['queued', s.queued ?? '?'], ['in flight', s.inflight ?? '?'],
      ['subscriptions', (s.subscriptions || []).map((x) => `${x.filter} (QoS ${x.qoS})`).join(', ') || 'none'],
    ];
    for (const [k, v] of rows) {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = v; dd.dataset.field = k;
      dl.append(dt, dd);
    }
    const kick = document.createElement('button');
    kick.className = 'danger';
    kick.textContent = 'Disconnect';
    kick.dataset.testid = 'kick';
    kick.disabled = !c.connected;
    kick.addEventListener('click', async () => {
      kick.disabled = true;
      const r = await api('/clients/' + encodeURIComponent(clientId) + '/disconnect', 'POST');
      kick.textContent = r.disconnected ? 'Disconnected' : 'Not connected';
      await poll();
    });
    box.append(h, dl, kick);
  }

  async function poll() {
    try {
      const [members, stats, list] = await Promise.all([api('/cluster/members'), api('/cluster/stats'), api('/clients')]);
      renderMembers(members);
      renderNodes(stats);
      clients = list.clients;
      renderClients();
      $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
      $('status').className = '';
    } catch (e) {
      if (token()) { $('status').textContent = 'error: ' + e.message; $('status').className = 'error'; }
    }
  }

  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    poll();
    timer = setInterval(poll, PollMs);
  }

  function signOut(reason) {
    sessionStorage.removeItem('broker-token');
    clearInterval(timer);
    $('app').hidden = true;
    $('signout').hidden = true;
    $('login').hidden = false;
    $('status').textContent = 'not signed in';
    $('login-error').textContent = reason || '';
  }

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('broker-token', $('token').value);
    $('login-error').textContent = '';
    start();
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('search').addEventListener('input', renderClients);
  if (token()) start();
})();
