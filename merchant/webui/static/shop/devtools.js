/*
 * devtools.js — the panel beside the phone: the simulated WeChat user (who
 * they are, their balance, what they will do with the payment sheet) and
 * the network log of everything that crossed the wire. Not part of the
 * mini program.
 */
(function () {
  'use strict';

  const sim = window.WxSim;

  function $(id) { return document.getElementById(id); }

  function formatYuan(fen) { return window.WxpayClient.formatYuan(fen); }

  // ---- the WeChat user -----------------------------------------------------

  function showUser(s) {
    $('sim-openid').textContent = s.openid || '(none yet)';
    $('sim-balance').textContent = s.balance == null ? '…' : '¥' + formatYuan(s.balance);
    const radio = document.querySelector('input[name="wx-outcome"][value="' + s.outcome + '"]');
    if (radio && !radio.checked) radio.checked = true;
  }

  sim.onChange(showUser);

  document.querySelectorAll('input[name="wx-outcome"]').forEach(function (r) {
    r.addEventListener('change', function () { if (r.checked) sim.setOutcome(r.value); });
  });

  $('sim-new-user').addEventListener('click', function () {
    sim.newUser();
    window.location.reload();
  });

  // ---- the network log ----------------------------------------------------

  const CHANNEL = {
    merchant: 'mini program → merchant server',
    wechat: 'WeChat client → WeChat (simulator)',
  };

  const entries = new Map(); // id -> <li>
  let count = 0;

  function pretty(v) {
    if (v === undefined || v === '') return '';
    return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
  }

  function section(title, text) {
    const wrap = document.createElement('div');
    wrap.className = 'log-section';
    const h = document.createElement('div');
    h.className = 'log-label';
    h.textContent = title;
    const pre = document.createElement('pre');
    pre.textContent = text;
    wrap.append(h, pre);
    return wrap;
  }

  function render(e) {
    let li = entries.get(e.id);
    if (!li) {
      li = document.createElement('li');
      li.dataset.channel = e.channel;
      li.dataset.logId = String(e.id);
      entries.set(e.id, li);
      $('network-entries').prepend(li);
      count++;
      $('network-count').textContent = String(count);
    }
    const d = document.createElement('details');
    const prev = li.querySelector('details');
    if (prev && prev.open) d.open = true;
    const s = document.createElement('summary');
    const status = e.error ? 'failed' : e.status == null ? '…' : String(e.status);
    const path = e.url.replace(/^https?:\/\/[^/]+/, '');
    s.append(
      span('log-via', e.via),
      span('log-method', e.method),
      span('log-path', path),
      span('log-status', status, e.error || (e.status >= 400) ? 'bad' : e.status ? 'good' : ''),
      span('log-ms', e.ms == null ? '' : e.ms + ' ms'));
    d.append(s);
    d.append(section(CHANNEL[e.channel] || e.channel, e.method + ' ' + path));
    const headers = Object.keys(e.requestHeaders).map(function (k) { return k + ': ' + e.requestHeaders[k]; }).join('\n');
    if (headers) d.append(section('request headers', headers));
    if (e.requestBody !== undefined && e.requestBody !== '') d.append(section('request body', pretty(e.requestBody)));
    if (e.error) d.append(section('error', e.error));
    else if (e.status != null) d.append(section('response ' + e.status, pretty(e.responseBody)));
    li.replaceChildren(d);
  }

  function span(cls, text, state) {
    const x = document.createElement('span');
    x.className = cls;
    if (state) x.dataset.state = state;
    x.textContent = text;
    return x;
  }

  sim.onLog(render);

  $('network-clear').addEventListener('click', function () {
    entries.clear();
    count = 0;
    $('network-count').textContent = '0';
    $('network-entries').replaceChildren();
  });

  showUser(sim.state());
})();
