/*
 * wx.js — the emulated WeChat client.
 *
 * In a real mini program, `wx` is provided by WeChat. Here this file plays
 * WeChat's part against the simulator's control API (/sim/v1/…), with the
 * real mini-program API shape:
 *
 *   wx.login({success, fail, complete})            -> {code, errMsg: "login:ok"}
 *   wx.request({url, method, data, header, dataType, success, fail, complete})
 *                                                  -> {data, statusCode, header, errMsg: "request:ok"}
 *   wx.requestPayment({timeStamp, nonceStr, package, signType, paySign, success, fail, complete})
 *                                                  -> {errMsg: "requestPayment:ok"} or "requestPayment:fail …"
 *   wx.showToast, wx.hideToast, wx.showLoading, wx.hideLoading, wx.showModal,
 *   wx.pageScrollTo({selector}),
 *   wx.getStorageSync, wx.setStorageSync, wx.removeStorageSync
 *
 * Everything the mini program does is in shop.js; everything here is
 * WeChat's (and the simulator's): the WeChat user, their openid and
 * balance, what they do with the payment sheet, and the network log.
 */
(function () {
  'use strict';

  const SIM = '/sim/v1';
  const OPENID_KEY = 'wxsim.openid';
  const meta = document.querySelector('meta[name="wxpay-appid"]');
  const configuredAppID = meta ? meta.content.trim() : '';

  // ---- the network log ----------------------------------------------------

  const logListeners = [];
  let logSeq = 0;

  /** Masks a token: the first 4 characters stay, for telling tokens apart. */
  function maskToken(t) {
    if (typeof t !== 'string' || t === '') return t;
    return t.slice(0, 4) + '…(masked)';
  }

  const SECRET_KEYS = { token: true, session_key: true, access_token: true, admin_token: true };

  /** A copy of v with secret-looking values masked. */
  function maskBody(v) {
    if (Array.isArray(v)) return v.map(maskBody);
    if (v && typeof v === 'object') {
      const out = {};
      for (const k of Object.keys(v)) out[k] = SECRET_KEYS[k] ? maskToken(v[k]) : maskBody(v[k]);
      return out;
    }
    return v;
  }

  function maskHeaders(h) {
    const out = {};
    for (const k of Object.keys(h || {})) {
      const v = String(h[k]);
      out[k] = k.toLowerCase() === 'authorization' ? v.replace(/^(\S+\s+)?(.*)$/, function (_, scheme, tok) {
        return (scheme || '') + maskToken(tok);
      }) : v;
    }
    return out;
  }

  function emit(entry) {
    for (const f of logListeners) {
      try { f(entry); } catch (e) { console.error(e); }
    }
  }

  /**
   * fetch, logged. channel: "merchant" (the mini program's wx.request to
   * its server) or "wechat" (the WeChat client talking to WeChat, here the
   * simulator). via: the wx API that made the call.
   */
  async function loggedFetch(channel, via, method, url, headers, body) {
    const entry = {
      id: ++logSeq, channel: channel, via: via, method: method, url: url,
      requestHeaders: maskHeaders(headers), requestBody: maskBody(parseMaybe(body)),
      status: null, responseBody: undefined, error: null, startedAt: new Date(), ms: null,
    };
    emit(entry);
    const t0 = performance.now();
    try {
      const res = await fetch(url, {
        method: method, headers: headers, body: body, credentials: 'same-origin', cache: 'no-store',
        redirect: 'error', referrerPolicy: 'no-referrer',
      });
      const text = await res.text();
      entry.status = res.status;
      entry.ms = Math.round(performance.now() - t0);
      const parsed = parseMaybe(text);
      entry.responseBody = maskBody(parsed);
      const rh = {};
      res.headers.forEach(function (v, k) { rh[k] = v; });
      emit(entry);
      return { status: res.status, text: text, json: parsed, headers: rh };
    } catch (e) {
      entry.error = String(e && e.message || e);
      entry.ms = Math.round(performance.now() - t0);
      emit(entry);
      throw e;
    }
  }

  function parseMaybe(text) {
    if (typeof text !== 'string' || text === '') return text;
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  /** Calls the simulator's control API; returns the JSON or throws with its error. */
  async function sim(via, method, path, body) {
    const res = await loggedFetch('wechat', via, method, SIM + path,
      body === undefined ? {} : { 'Content-Type': 'application/json' },
      body === undefined ? undefined : JSON.stringify(body));
    if (res.status >= 200 && res.status < 300 && res.json && typeof res.json === 'object') return res.json;
    const e = res.json && res.json.error;
    const msg = typeof e === 'string' ? e : e && e.message ? e.message : 'HTTP ' + res.status;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }

  // ---- the WeChat user ----------------------------------------------------

  const state = {
    openid: localStorage.getItem(OPENID_KEY) || '',
    balance: null,
    outcome: 'success', // what the user does with the payment sheet
  };
  const stateListeners = [];
  function changed() {
    for (const f of stateListeners) {
      try { f(Object.assign({}, state)); } catch (e) { console.error(e); }
    }
  }

  let userPromise = null;

  /**
   * The WeChat user of this browser: the stored openid when the simulator
   * still knows it, else a new user (POST /sim/v1/users). What a phone
   * with WeChat installed has without asking.
   */
  function ensureUser() {
    if (!userPromise) {
      userPromise = (async function () {
        if (state.openid) {
          try {
            const u = await sim('(WeChat account)', 'GET', '/users/' + encodeURIComponent(state.openid));
            state.balance = u.balance;
            changed();
            return state.openid;
          } catch (e) {
            if (e.status !== 404) throw e;
          }
        }
        const body = configuredAppID ? { appid: configuredAppID } : {};
        const u = await sim('(WeChat account)', 'POST', '/users', body);
        state.openid = u.openid;
        state.balance = u.balance;
        localStorage.setItem(OPENID_KEY, u.openid);
        changed();
        return u.openid;
      })();
      userPromise.catch(function () { userPromise = null; });
    }
    return userPromise;
  }

  /** Reads the user's balance again (after a payment). Not logged: it is the simulator's view. */
  async function refreshBalance() {
    if (!state.openid) return;
    try {
      const res = await fetch(SIM + '/users/' + encodeURIComponent(state.openid), { cache: 'no-store' });
      if (res.ok) {
        state.balance = (await res.json()).balance;
        changed();
      }
    } catch (e) { /* the panel keeps the old balance */ }
  }

  /** Forgets the user: the next wx.login creates a new one. */
  function newUser() {
    localStorage.removeItem(OPENID_KEY);
    state.openid = '';
    state.balance = null;
    userPromise = null;
    changed();
  }

  // ---- callbacks in WeChat's style ---------------------------------------

  function settle(opts, ok, res) {
    opts = opts || {};
    try {
      if (ok && typeof opts.success === 'function') opts.success(res);
      if (!ok && typeof opts.fail === 'function') opts.fail(res);
    } finally {
      if (typeof opts.complete === 'function') opts.complete(res);
    }
  }

  // ---- wx.login -----------------------------------------------------------

  function login(opts) {
    (async function () {
      try {
        const openid = await ensureUser();
        const body = { openid: openid };
        if (configuredAppID) body.appid = configuredAppID;
        const r = await sim('wx.login', 'POST', '/login-codes', body);
        settle(opts, true, { code: r.code, errMsg: 'login:ok' });
      } catch (e) {
        settle(opts, false, { errMsg: 'login:fail ' + (e && e.message || e) });
      }
    })();
  }

  // ---- wx.request ---------------------------------------------------------

  function toQuery(data) {
    if (data == null || data === '') return '';
    if (typeof data === 'string') return data;
    return Object.keys(data).filter(function (k) { return data[k] !== undefined; }).map(function (k) {
      return encodeURIComponent(k) + '=' + encodeURIComponent(String(data[k]));
    }).join('&');
  }

  function request(opts) {
    opts = opts || {};
    const method = String(opts.method || 'GET').toUpperCase();
    const header = Object.assign({}, opts.header || {});
    let url = String(opts.url || '');
    let body;
    if (method === 'GET' || method === 'HEAD') {
      const q = toQuery(opts.data);
      if (q) url += (url.indexOf('?') < 0 ? '?' : '&') + q;
      // A GET has no body; its Content-Type header means nothing.
      for (const k of Object.keys(header)) if (k.toLowerCase() === 'content-type') delete header[k];
    } else if (opts.data !== undefined) {
      const ctKey = Object.keys(header).find(function (k) { return k.toLowerCase() === 'content-type'; });
      if (!ctKey) header['Content-Type'] = 'application/json';
      const ct = header[ctKey || 'Content-Type'];
      if (typeof opts.data === 'string') body = opts.data;
      else if (/json/i.test(ct)) body = JSON.stringify(opts.data);
      else body = toQuery(opts.data);
    }
    let aborted = false;
    (async function () {
      try {
        const res = await loggedFetch('merchant', 'wx.request', method, url, header, body);
        if (aborted) return;
        const data = (opts.dataType || 'json') === 'json' && res.json !== res.text ? res.json : res.text;
        settle(opts, true, { data: data, statusCode: res.status, header: res.headers, errMsg: 'request:ok' });
      } catch (e) {
        if (aborted) return;
        settle(opts, false, { errMsg: 'request:fail ' + (e && e.message || e) });
      }
    })();
    return {
      abort: function () {
        if (aborted) return;
        aborted = true;
        settle(opts, false, { errMsg: 'request:fail abort' });
      },
    };
  }

  // ---- wx.requestPayment --------------------------------------------------

  function requestPayment(opts) {
    opts = opts || {};
    (async function () {
      const sheet = paymentSheet();
      try {
        const openid = await ensureUser();
        // The real client knows its app's AppID; the emulated one takes the
        // one the server signed (pay_params.appId), else the configured one.
        const body = {
          openid: openid,
          appId: opts.appId || configuredAppID,
          timeStamp: opts.timeStamp,
          nonceStr: opts.nonceStr,
          package: opts.package,
          signType: opts.signType,
          paySign: opts.paySign,
          outcome: state.outcome,
        };
        const r = await sim('wx.requestPayment', 'POST', '/request-payment', body);
        sheet.close();
        refreshBalance();
        const msg = r.errMsg || 'requestPayment:fail';
        settle(opts, msg === 'requestPayment:ok', { errMsg: msg });
      } catch (e) {
        sheet.close();
        settle(opts, false, { errMsg: 'requestPayment:fail ' + (e && e.message || e) });
      }
    })();
  }

  // ---- UI: payment sheet, toast, loading, modal ---------------------------

  const OUTCOME_TEXT = {
    success: 'The user confirms the payment…',
    cancel: 'The user closes the payment sheet…',
    insufficient: 'The user pays, with too little balance…',
  };

  function paymentSheet() {
    const el = document.getElementById('wx-paysheet');
    if (!el) return { close: function () {} };
    el.querySelector('.paysheet-text').textContent = OUTCOME_TEXT[state.outcome] || '';
    el.hidden = false;
    return { close: function () { el.hidden = true; } };
  }

  let toastTimer = null;

  function showToast(opts) {
    opts = opts || {};
    const el = document.getElementById('wx-toast');
    if (!el) return settle(opts, false, { errMsg: 'showToast:fail no toast element' });
    const icon = opts.icon || 'success';
    el.dataset.icon = icon;
    el.querySelector('.toast-icon').textContent = icon === 'success' ? '✓' : icon === 'error' ? '✕' : icon === 'loading' ? '…' : '';
    el.querySelector('.toast-title').textContent = opts.title || '';
    el.hidden = false;
    clearTimeout(toastTimer);
    if (icon !== 'loading' || opts.duration) {
      toastTimer = setTimeout(function () { el.hidden = true; }, opts.duration || 1500);
    }
    settle(opts, true, { errMsg: 'showToast:ok' });
  }

  function hideToast(opts) {
    const el = document.getElementById('wx-toast');
    if (el) el.hidden = true;
    clearTimeout(toastTimer);
    settle(opts, true, { errMsg: 'hideToast:ok' });
  }

  function showLoading(opts) {
    showToast({ title: (opts && opts.title) || '', icon: 'loading' });
    settle(opts, true, { errMsg: 'showLoading:ok' });
  }

  function hideLoading(opts) {
    hideToast();
    settle(opts, true, { errMsg: 'hideLoading:ok' });
  }

  function showModal(opts) {
    opts = opts || {};
    const el = document.getElementById('wx-modal');
    if (!el) return settle(opts, false, { errMsg: 'showModal:fail no modal element' });
    el.querySelector('.modal-title').textContent = opts.title || '';
    el.querySelector('.modal-content').textContent = opts.content || '';
    const ok = el.querySelector('#wx-modal-confirm');
    const cancel = el.querySelector('#wx-modal-cancel');
    ok.textContent = opts.confirmText || 'OK';
    cancel.textContent = opts.cancelText || 'Cancel';
    cancel.hidden = opts.showCancel === false;
    el.hidden = false;
    function done(confirm) {
      el.hidden = true;
      ok.onclick = cancel.onclick = null;
      settle(opts, true, { confirm: confirm, cancel: !confirm, errMsg: 'showModal:ok' });
    }
    ok.onclick = function () { done(true); };
    cancel.onclick = function () { done(false); };
    ok.focus();
  }

  function pageScrollTo(opts) {
    // Asynchronous, as in WeChat: a setData made just before has rendered by then.
    setTimeout(function () { scrollNow(opts || {}); }, 0);
  }

  function scrollNow(opts) {
    const page = document.getElementById('page');
    const target = opts.selector ? document.querySelector(opts.selector) : null;
    if (!page || (opts.selector && !target)) return settle(opts, false, { errMsg: 'pageScrollTo:fail no such element' });
    const top = target
      ? target.getBoundingClientRect().top - page.getBoundingClientRect().top + page.scrollTop - (opts.offsetTop || 0)
      : opts.scrollTop || 0;
    const smooth = opts.duration !== 0 && !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    page.scrollTo({ top: top, behavior: smooth ? 'smooth' : 'auto' });
    settle(opts, true, { errMsg: 'pageScrollTo:ok' });
  }

  // ---- storage, as in a mini program (JSON in localStorage) ---------------

  const STORAGE_PREFIX = 'wxapp.';
  function getStorageSync(key) {
    const v = localStorage.getItem(STORAGE_PREFIX + key);
    if (v === null) return '';
    try { return JSON.parse(v); } catch (e) { return ''; }
  }
  function setStorageSync(key, value) { localStorage.setItem(STORAGE_PREFIX + key, JSON.stringify(value)); }
  function removeStorageSync(key) { localStorage.removeItem(STORAGE_PREFIX + key); }

  window.wx = {
    login: login,
    request: request,
    requestPayment: requestPayment,
    showToast: showToast,
    hideToast: hideToast,
    showLoading: showLoading,
    hideLoading: hideLoading,
    showModal: showModal,
    pageScrollTo: pageScrollTo,
    getStorageSync: getStorageSync,
    setStorageSync: setStorageSync,
    removeStorageSync: removeStorageSync,
  };

  // The simulator's handles, for the side panel (not part of WeChat's API).
  window.WxSim = {
    state: function () { return Object.assign({}, state); },
    setOutcome: function (o) {
      if (OUTCOME_TEXT[o]) { state.outcome = o; changed(); }
    },
    onChange: function (f) { stateListeners.push(f); },
    onLog: function (f) { logListeners.push(f); },
    ensureUser: ensureUser,
    refreshBalance: refreshBalance,
    newUser: newUser,
    maskToken: maskToken,
  };
})();
