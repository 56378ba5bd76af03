/*
 * admin.js — the admin dashboard, over the admin API (/admin/api/v1/…).
 *
 * The admin token is kept in sessionStorage (gone when the tab closes),
 * sent only in the Authorization header, and never put in a URL. Views are
 * chosen by the URL's fragment: #/orders, #/orders/<out_trade_no>,
 * #/anomalies, #/recon, #/recon/<yyyy-mm-dd>.
 */
(function () {
  'use strict';

  const API = '/admin/api/v1';
  const TOKEN_KEY = 'wxpay.admin.token';
  const { fenToYuan, yuanToFen } = window.Money;
  const REFUND_FINAL = { SUCCESS: true, CLOSED: true, CHANGE: true, FAILED: true, REFUNDCLOSE: true };

  function $(id) { return document.getElementById(id); }

  // ---- DOM helpers -----------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  function badge(status) {
    return el('span', { class: 'badge', 'data-status': status || '' }, status || '—');
  }

  function yuan(fen) {
    return fen == null || fen === '' ? '—' : '¥' + fenToYuan(fen);
  }

  /**
   * An RFC 3339 time as "YYYY-MM-DD HH:MM:SS" in China Standard Time (the
   * merchant's day, the bill's day, the filters' day), the original in the
   * title.
   */
  function time(v) {
    if (!v) return '—';
    const ms = new Date(v).getTime();
    if (isNaN(ms) || ms < 86400e3 * 366) return '—';
    const cst = new Date(ms + 8 * 3600e3).toISOString(); // UTC+8 has no daylight saving
    return el('time', { datetime: String(v), title: String(v) }, cst.slice(0, 10) + ' ' + cst.slice(11, 19));
  }

  function cell(v) {
    if (v == null || v === '') return '—';
    if (v instanceof Node) return v;
    if (typeof v === 'object') return el('code', {}, JSON.stringify(v));
    return String(v);
  }

  /** A table of objects: columns [{key, label, render}], or all keys seen. */
  function table(rows, columns, opts) {
    opts = opts || {};
    if (!columns) {
      const keys = [];
      for (const r of rows) for (const k of Object.keys(r || {})) if (!keys.includes(k)) keys.push(k);
      columns = keys.map((k) => ({ key: k, label: k }));
    }
    const t = el('table', { class: 'grid' });
    t.append(el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', {}, c.label)))));
    const body = el('tbody');
    if (rows.length === 0) {
      body.append(el('tr', { class: 'empty' }, el('td', { colspan: String(columns.length) }, opts.empty || 'Nothing here.')));
    }
    for (const r of rows) {
      const tr = el('tr', opts.rowAttrs ? opts.rowAttrs(r) : {});
      for (const c of columns) {
        const td = el('td', c.cellAttrs ? c.cellAttrs(r) : {});
        td.append(cell(c.render ? c.render(r) : r[c.key]));
        tr.append(td);
      }
      body.append(tr);
    }
    t.append(body);
    return t;
  }

  /** A definition list of an object's fields. */
  function kv(obj, render) {
    const dl = el('dl', { class: 'kv' });
    for (const [k, v] of Object.entries(obj || {})) {
      const r = render && render[k];
      dl.append(el('dt', {}, k), el('dd', {}, cell(r ? r(v) : v)));
    }
    return dl;
  }

  // ---- the API ---------------------------------------------------------------

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  async function api(method, path, body, tok) {
    const headers = { Authorization: 'Bearer ' + (tok || token()), Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(API + path, {
        method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store', credentials: 'omit', redirect: 'error',
      });
    } catch (e) {
      throw new APIError(0, 'network', 'the server does not answer (' + e.message + ')');
    }
    let data = null;
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (res.ok) return data || {};
    const err = data && data.error && typeof data.error === 'object' ? data.error : {};
    const e = new APIError(res.status, err.code || 'http_' + res.status, err.message || (typeof (data && data.error) === 'string' ? data.error : 'HTTP ' + res.status));
    if (res.status === 401 && !tok) signOut('The server refused the token: ' + e.message);
    throw e;
  }

  function showError(e) {
    const box = $('admin-error');
    if (!e) {
      box.hidden = true;
      box.textContent = '';
      return;
    }
    box.textContent = (e.code ? e.code + ': ' : '') + e.message;
    box.hidden = false;
  }

  // ---- signing in ------------------------------------------------------------

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('token-input');
    const tok = input.value.trim();
    $('token-error').textContent = '';
    if (!tok) {
      $('token-error').textContent = 'Enter the admin token (config admin_token, env WXPAY_ADMIN_TOKEN).';
      return;
    }
    $('token-submit').disabled = true;
    try {
      await api('GET', '/orders?limit=1', undefined, tok);
      sessionStorage.setItem(TOKEN_KEY, tok);
      input.value = '';
      showApp();
    } catch (e) {
      $('token-error').textContent = e.status === 401 ? 'The server refused this token.' : 'Could not check the token: ' + e.message;
    } finally {
      $('token-submit').disabled = false;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    stopPolling();
    $('app-view').hidden = true;
    $('login-view').hidden = false;
    $('sign-out').hidden = true;
    $('token-error').textContent = typeof message === 'string' ? message : '';
    $('token-input').focus();
  }

  function showApp() {
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    $('sign-out').hidden = false;
    route();
  }

  // ---- routing ---------------------------------------------------------------

  const views = ['orders-view', 'order-view', 'anomalies-view', 'recon-view'];

  function show(view, tab) {
    for (const v of views) $(v).hidden = v !== view;
    document.querySelectorAll('.tabs a').forEach((a) => a.classList.toggle('active', a.dataset.tab === tab));
  }

  function route() {
    if (!token()) return;
    stopPolling();
    showError(null);
    const h = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
    const parts = h.split('/');
    if (parts[0] === 'orders' && parts[1]) {
      show('order-view', 'orders');
      loadOrder(parts.slice(1).join('/'));
    } else if (parts[0] === 'anomalies') {
      show('anomalies-view', 'anomalies');
      loadAnomalies();
    } else if (parts[0] === 'recon') {
      show('recon-view', 'recon');
      if (parts[1]) {
        $('recon-date').value = parts[1];
        loadRecon(parts[1]);
      }
    } else {
      show('orders-view', 'orders');
      loadOrders();
    }
  }

  // ---- orders ----------------------------------------------------------------

  const pager = { cursors: [''], page: 0, next: '' };

  /** A date input's yyyy-mm-dd as the start of that day in China Standard Time. */
  function dayStart(d) { return d ? d + 'T00:00:00+08:00' : ''; }

  /** The day after yyyy-mm-dd, for an exclusive upper bound that includes the day. */
  function nextDay(d) {
    const [y, m, dd] = d.split('-').map(Number);
    const t = new Date(Date.UTC(y, m - 1, dd + 1));
    return t.toISOString().slice(0, 10);
  }

  function orderQuery() {
    const q = new URLSearchParams();
    const status = $('filter-status').value;
    const since = $('filter-since').value;
    const until = $('filter-until').value;
    if (status) q.set('status', status);
    if (since) q.set('since', dayStart(since));
    if (until) q.set('until', dayStart(nextDay(until)));
    q.set('limit', $('filter-limit').value || '20');
    const c = pager.cursors[pager.page];
    if (c) q.set('cursor', c);
    return q.toString();
  }

  async function loadOrders() {
    const wrap = $('orders-table');
    wrap.setAttribute('aria-busy', 'true');
    try {
      const data = await api('GET', '/orders?' + orderQuery());
      const orders = data.orders || [];
      pager.next = data.next_cursor || '';
      renderOrders(orders);
      $('orders-next').disabled = !pager.next;
      $('orders-first').disabled = pager.page === 0;
      $('orders-page').textContent = 'page ' + (pager.page + 1);
    } catch (e) {
      showError(e);
    } finally {
      wrap.removeAttribute('aria-busy');
    }
  }

  function orderLink(no) {
    return el('a', { href: '#/orders/' + encodeURIComponent(no), class: 'mono' }, no);
  }

  function renderOrders(orders) {
    const tbody = $('orders-table').querySelector('tbody');
    tbody.replaceChildren();
    if (orders.length === 0) {
      tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: '7' }, 'No orders match.')));
      return;
    }
    for (const o of orders) {
      const no = o.out_trade_no;
      const tr = el('tr', { 'data-order': no, tabindex: '0' },
        el('td', {}, orderLink(no)),
        el('td', {}, badge(o.status)),
        el('td', { class: 'num' }, yuan(o.total_fee)),
        el('td', { class: 'num' }, o.refunded_fee ? yuan(o.refunded_fee) : '—'),
        el('td', {}, cell(o.trade_type)),
        el('td', {}, time(o.created_at)),
        el('td', {}, time(o.paid_at)));
      tr.addEventListener('click', (ev) => {
        if (ev.target.closest('a')) return;
        location.hash = '#/orders/' + encodeURIComponent(no);
      });
      tr.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') location.hash = '#/orders/' + encodeURIComponent(no);
      });
      tbody.append(tr);
    }
  }

  function applyFilters(ev) {
    if (ev) ev.preventDefault();
    pager.cursors = [''];
    pager.page = 0;
    loadOrders();
  }

  // ---- one order -------------------------------------------------------------

  let current = null;    // the order detail shown
  let pollTimer = null;
  let pending = null;    // {outRefundNo, amount, reason} of the refund being submitted

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function loadOrder(no, quiet) {
    if (!quiet) {
      $('detail-no').textContent = no;
      $('order-status').textContent = '…';
    }
    try {
      const d = await api('GET', '/orders/' + encodeURIComponent(no));
      if (currentNo() !== no) return null;
      current = d;
      renderOrder(d);
      if (!quiet) showError(null);
      return d;
    } catch (e) {
      showError(e);
      return null;
    }
  }

  function currentNo() {
    const h = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
    return h.startsWith('orders/') ? h.slice('orders/'.length) : '';
  }

  function renderOrder(d) {
    const o = d.order || {};
    const refunds = d.refunds || [];
    $('detail-no').textContent = o.out_trade_no || currentNo();
    const st = $('order-status');
    st.textContent = o.status || '';
    st.dataset.status = o.status || '';

    const summary = {};
    const order = Object.assign({}, o);
    for (const k of ['out_trade_no', 'status', 'total_fee', 'refunded_fee', 'trade_type', 'openid', 'transaction_id', 'created_at', 'paid_at']) {
      if (k in order) summary[k] = order[k];
      delete order[k];
    }
    delete order.items;
    Object.assign(summary, order);
    const fee = (v) => yuan(v) + (v != null ? '  (' + v + ' fen)' : '');
    $('order-summary').replaceChildren(kv(summary, {
      total_fee: fee, refunded_fee: fee, status: badge, created_at: time, paid_at: time, updated_at: time,
      expires_at: time, prepay_expires_at: time, last_queried_at: time,
    }));
    $('order-items').replaceChildren(table(o.items || [], [
      { key: 'sku', label: 'sku' },
      { key: 'name', label: 'name' },
      { key: 'quantity', label: 'qty', cellAttrs: () => ({ class: 'num' }) },
      { key: 'unit_price', label: 'unit price', render: (r) => yuan(r.unit_price), cellAttrs: () => ({ class: 'num' }) },
    ], { empty: 'No items.' }));

    // Refundable: what was paid minus what refunds hold (the server has the last word).
    const paid = o.status === 'PAID' || o.status === 'REFUND';
    const held = refunds.filter((r) => r.status !== 'CLOSED' && r.status !== 'FAILED')
      .reduce((s, r) => s + (Number(r.refund_fee) || 0), 0);
    const refundable = paid ? Math.max(0, (Number(o.total_fee) || 0) - held) : 0;
    $('refundable').textContent = paid ? 'Refundable: ' + yuan(refundable) : 'Only a paid order can be refunded.';
    $('refund-submit').disabled = !paid || refundable === 0;

    $('refunds-table').replaceChildren(table(refunds, [
      { key: 'out_refund_no', label: 'out_refund_no', render: (r) => el('span', { class: 'mono' }, r.out_refund_no) },
      { key: 'refund_fee', label: 'amount', render: (r) => yuan(r.refund_fee), cellAttrs: () => ({ class: 'num' }) },
      {
        key: 'status', label: 'status', render: (r) => badge(r.status),
        cellAttrs: (r) => ({ class: 'refund-status', id: 'refund-status-' + r.out_refund_no, 'data-status': r.status }),
      },
      { key: 'reason', label: 'reason' },
      { key: 'created_at', label: 'created', render: (r) => time(r.created_at) },
      { key: 'success_at', label: 'succeeded', render: (r) => time(r.success_at) },
    ], { empty: 'No refunds.', rowAttrs: (r) => ({ 'data-refund': r.out_refund_no }) }));

    renderTimeline(d);
    $('events-table').replaceChildren(table(d.events || [], null, { empty: 'No events.' }));
    $('anomalies-detail').replaceChildren(table(d.anomalies || [], null, { empty: 'No anomalies.' }));
    $('outbox-table').replaceChildren(table(d.outbox || [], null, { empty: 'No outbox events.' }));
    $('detail-json').textContent = JSON.stringify(d, null, 2);
  }

  function renderTimeline(d) {
    const o = d.order || {};
    const items = [];
    const add = (at, kind, text, status) => { if (at) items.push({ at: at, t: new Date(at).getTime() || 0, kind: kind, text: text, status: status }); };
    add(o.created_at, 'order', 'order created · ' + yuan(o.total_fee), 'NOTPAY');
    for (const e of d.events || []) add(e.at || e.created_at, 'event', (e.from || '∅') + ' → ' + e.to + (e.source ? '  (' + e.source + ')' : ''), e.to);
    for (const r of d.refunds || []) {
      add(r.created_at, 'refund', 'refund ' + r.out_refund_no + ' requested · ' + yuan(r.refund_fee) + (r.reason ? ' · ' + r.reason : ''), 'PROCESSING');
      add(r.success_at, 'refund', 'refund ' + r.out_refund_no + ' succeeded', 'SUCCESS');
    }
    for (const a of d.anomalies || []) add(a.created_at || a.at, 'anomaly', 'anomaly ' + (a.kind || '') + (a.detail ? ': ' + a.detail : ''), 'CHANGE');
    for (const x of d.outbox || []) {
      add(x.created_at, 'outbox', 'webhook ' + (x.type || '') + ' queued', '');
      if (x.delivered_at) add(x.delivered_at, 'outbox', 'webhook ' + (x.type || '') + ' delivered (' + (x.attempts || 1) + ' attempt(s))', 'SUCCESS');
      else if (x.last_error) add(x.next_at || x.created_at, 'outbox', 'webhook ' + (x.type || '') + ' failing: ' + x.last_error + ' · next try', 'FAILED');
    }
    items.sort((a, b) => a.t - b.t);
    $('timeline').replaceChildren(...items.map((i) => el('li', { 'data-kind': i.kind },
      el('span', { class: 'tl-time' }, time(i.at)),
      el('span', { class: 'tl-kind' }, i.kind),
      el('span', { class: 'tl-text' }, i.text))));
    if (items.length === 0) $('timeline').append(el('li', { class: 'muted' }, 'Nothing yet.'));
  }

  async function sync() {
    const no = currentNo();
    if (!no) return;
    const b = $('sync-button');
    b.disabled = true;
    $('sync-result').textContent = 'Asking WeChat…';
    try {
      const r = await api('POST', '/orders/' + encodeURIComponent(no) + '/sync', {});
      // The answer is the order detail after WeChat's answer was applied.
      if (currentNo() === no && r && r.order) {
        current = r;
        renderOrder(r);
      }
      const st = r && r.order && r.order.status;
      $('sync-result').textContent = 'Synced with WeChat' + (st ? ': the order is ' + st : '') + '.';
    } catch (e) {
      $('sync-result').textContent = 'Sync failed: ' + e.message;
    } finally {
      b.disabled = false;
    }
  }

  /** A refund number made here, so that a retried submit is the same refund. */
  function newRefundNo() {
    const a = crypto.getRandomValues(new Uint8Array(6));
    const rnd = Array.from(a, (x) => x.toString(16).padStart(2, '0')).join('');
    const d = new Date();
    const p = (n) => String(n).padStart(2, '0');
    return 'RFA' + d.getFullYear() + p(d.getMonth() + 1) + p(d.getDate()) + p(d.getHours()) + p(d.getMinutes()) + p(d.getSeconds()) + rnd;
  }

  async function refund(ev) {
    ev.preventDefault();
    const no = currentNo();
    const err = $('refund-error');
    err.textContent = '';
    let fen;
    try {
      fen = yuanToFen($('refund-amount').value);
      if (fen <= 0) throw new Error('the amount must be more than 0');
    } catch (e) {
      err.textContent = e.message;
      $('refund-amount').focus();
      return;
    }
    const reason = $('refund-reason').value.trim();
    // The same amount, reason and order reuse the number: a double submit
    // or a retry after a lost answer is the same refund, never a second one.
    if (!pending || pending.order !== no || pending.fen !== fen || pending.reason !== reason) {
      pending = { order: no, fen: fen, reason: reason, outRefundNo: newRefundNo() };
    }
    const body = { refund_fee: fen, out_refund_no: pending.outRefundNo };
    if (reason) body.reason = reason;
    $('refund-submit').disabled = true;
    $('refund-result').textContent = 'Refunding ' + yuan(fen) + ' (' + fen + ' fen)…';
    try {
      const r = await api('POST', '/orders/' + encodeURIComponent(no) + '/refunds', body);
      const rf = r.refund || r;
      pending = null;
      $('refund-amount').value = '';
      $('refund-reason').value = '';
      $('refund-fen').textContent = '';
      $('refund-result').textContent = 'Refund ' + rf.out_refund_no + ': ' + rf.status + '.' +
        (REFUND_FINAL[rf.status] ? '' : ' Waiting for WeChat…');
      await loadOrder(no, true);
      if (!REFUND_FINAL[rf.status]) pollRefund(no, rf.out_refund_no, Date.now());
    } catch (e) {
      $('refund-result').textContent = '';
      err.textContent = e.message;
    } finally {
      $('refund-submit').disabled = false;
      if (current) renderOrder(current);
    }
  }

  /** Reloads the order until the refund's status is final, for up to 3 minutes. */
  function pollRefund(no, outRefundNo, started) {
    stopPolling();
    pollTimer = setTimeout(async () => {
      if (currentNo() !== no) return;
      const d = await loadOrder(no, true);
      const rf = d && (d.refunds || []).find((r) => r.out_refund_no === outRefundNo);
      const status = rf ? rf.status : '?';
      if (rf && REFUND_FINAL[status]) {
        $('refund-result').textContent = 'Refund ' + outRefundNo + ': ' + status + '.';
        return;
      }
      if (Date.now() - started > 180000) {
        $('refund-result').textContent = 'Refund ' + outRefundNo + ' is still ' + status + '. "Sync with WeChat" asks again.';
        return;
      }
      $('refund-result').textContent = 'Refund ' + outRefundNo + ': ' + status + '. Waiting for WeChat…';
      pollRefund(no, outRefundNo, started);
    }, 1500);
  }

  // ---- anomalies -------------------------------------------------------------

  async function loadAnomalies() {
    try {
      const d = await api('GET', '/anomalies');
      const rows = d.anomalies || [];
      $('anomalies-table').replaceChildren(table(rows, anomalyColumns(rows), { empty: 'No anomalies. Good.' }));
    } catch (e) {
      showError(e);
    }
  }

  function anomalyColumns(rows) {
    const keys = [];
    for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
    return keys.map((k) => ({
      key: k, label: k,
      render: k === 'out_trade_no' ? (r) => (r.out_trade_no ? orderLink(r.out_trade_no) : '—')
        : /(_at|^at)$/.test(k) ? (r) => time(r[k]) : undefined,
    }));
  }

  // ---- reconciliation --------------------------------------------------------

  /** Yesterday in China Standard Time: the latest day with a bill. */
  function yesterdayCST() {
    const t = new Date(Date.now() + 8 * 3600e3 - 86400e3);
    return t.toISOString().slice(0, 10);
  }

  async function runRecon(ev) {
    ev.preventDefault();
    const date = $('recon-date').value;
    if (!date) return;
    $('recon-run').disabled = true;
    $('recon-state').textContent = 'Downloading the bill of ' + date + ' and comparing…';
    try {
      const d = await api('POST', '/reconciliations', { date: date });
      renderRecon(d);
      history.replaceState(null, '', '#/recon/' + date);
    } catch (e) {
      $('recon-state').textContent = '';
      showError(e);
    } finally {
      $('recon-run').disabled = false;
    }
  }

  async function loadRecon(date) {
    $('recon-state').textContent = 'Loading the report of ' + date + '…';
    try {
      renderRecon(await api('GET', '/reconciliations/' + encodeURIComponent(date)));
    } catch (e) {
      $('recon-state').textContent = e.status === 404 ? 'No report for ' + date + ' yet: run it.' : '';
      $('recon-report').replaceChildren();
      $('recon-exceptions').replaceChildren();
      if (e.status !== 404) showError(e);
    }
  }

  function renderRecon(d) {
    const r = d.report || {};
    const ex = d.exceptions || [];
    const rows = r.bill_rows != null ? r.bill_rows + ' bill row(s), ' + (r.matched || 0) + ' matched: ' : '';
    $('recon-state').textContent = rows + (ex.length === 0 ? 'the bill and the orders agree.' : ex.length + ' exception(s) to look at.');
    const money = (v) => yuan(v) + '  (' + v + ' fen)';
    $('recon-report').replaceChildren(kv(r, {
      bill_total: money, local_total: money, bill_refunds: money, local_refunds: money, ran_at: time,
    }));
    $('recon-exceptions').replaceChildren(table(ex, anomalyColumns(ex), { empty: 'No exceptions.' }));
  }

  // ---- the simulator's cashier -----------------------------------------------

  async function probeSimulator() {
    try {
      const r = await fetch('/sim/', { method: 'GET', cache: 'no-store', credentials: 'omit', redirect: 'error' });
      if (r.ok && (r.headers.get('Content-Type') || '').startsWith('text/html')) $('sim-link').hidden = false;
    } catch (e) { /* no simulator here */ }
  }

  // ---- start -------------------------------------------------------------------

  function start() {
    $('token-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => signOut(''));
    $('filters').addEventListener('submit', applyFilters);
    $('filters-reset').addEventListener('click', () => {
      $('filters').reset();
      applyFilters();
    });
    $('orders-next').addEventListener('click', () => {
      if (!pager.next) return;
      pager.cursors[pager.page + 1] = pager.next;
      pager.page++;
      loadOrders();
    });
    $('orders-first').addEventListener('click', () => {
      pager.page = 0;
      loadOrders();
    });
    $('orders-refresh').addEventListener('click', () => loadOrders());
    $('sync-button').addEventListener('click', sync);
    $('order-refresh').addEventListener('click', () => loadOrder(currentNo()));
    $('refund-form').addEventListener('submit', refund);
    $('refund-amount').addEventListener('input', () => {
      const v = $('refund-amount').value;
      let hint = '';
      if (v.trim()) {
        try { hint = '= ' + yuanToFen(v) + ' fen'; } catch (e) { hint = e.message; }
      }
      $('refund-fen').textContent = hint;
    });
    $('recon-form').addEventListener('submit', runRecon);
    $('recon-load').addEventListener('click', () => {
      const date = $('recon-date').value;
      if (date) {
        history.replaceState(null, '', '#/recon/' + date);
        loadRecon(date);
      }
    });
    $('anomalies-refresh').addEventListener('click', loadAnomalies);
    $('recon-date').value = yesterdayCST();
    window.addEventListener('hashchange', route);
    probeSimulator();
    if (token()) showApp();
    else signOut('');
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
