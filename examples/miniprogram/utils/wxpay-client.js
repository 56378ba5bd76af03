/*
 * wxpay-client.js — the mini program's side of WeChat Pay, against the
 * merchant server of github.com/wxpay-go/wxpay (`wxpay serve`).
 *
 * The same file runs in two places:
 *   - a real WeChat mini program (examples/miniprogram/utils/), over the
 *     real wx.login, wx.request and wx.requestPayment;
 *   - the emulated mini program of `wxpay serve --sim` (merchant/webui),
 *     over a `wx` shim that plays the WeChat client against the simulator.
 * It uses nothing but the `wx` object it is given, Promises and timers
 * (ES2017), and exports itself with CommonJS when it can, else as the
 * global WxpayClient.
 *
 * The flow (WeChat Pay v2, mini-program pay):
 *   1. wx.login() gives a one-time code; POST /api/v1/login trades it for
 *      our session token (the server calls jscode2session; the openid and
 *      session_key stay on the server's side of the trust line).
 *   2. POST /api/v1/orders names products and quantities — never prices:
 *      the server prices the cart, calls unifiedorder, and signs the pay
 *      parameters. paySign is made on the server with the API key, which
 *      never leaves it.
 *   3. wx.requestPayment(pay_params) asks WeChat to pay.
 *   4. Its "requestPayment:ok" only means the user finished the payment
 *      sheet: the order is paid when the server says so (it heard WeChat's
 *      notify, or asked WeChat), so we poll GET /api/v1/orders/{no}.
 */
(function (root) {
  'use strict';

  /** An answer of the merchant server that is not a 2xx, or no answer. */
  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.name = 'APIError';
      this.status = status; // HTTP status; 0 when the request never got an answer
      this.code = code;     // the server's error code ("invalid", "unauthorized" …) or "network"
    }
  }

  /** Formats fen as yuan with integer math: 1234 -> "12.34". */
  function formatYuan(fen) {
    const n = Number(fen);
    if (!Number.isSafeInteger(n)) return '?';
    const abs = Math.abs(n);
    const cents = String(abs % 100);
    return (n < 0 ? '-' : '') + String((abs - (abs % 100)) / 100) + '.' + (cents.length < 2 ? '0' + cents : cents);
  }

  /** A random UUID (version 4) for Idempotency-Key. */
  function newUUID() {
    const b = new Array(16);
    const c = typeof crypto !== 'undefined' && crypto && crypto.getRandomValues ? crypto : null;
    if (c) {
      const a = c.getRandomValues(new Uint8Array(16));
      for (let i = 0; i < 16; i++) b[i] = a[i];
    } else {
      // Unique enough for an idempotency key, which is not a secret.
      for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = b.map(function (x) { return (x < 16 ? '0' : '') + x.toString(16); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  /** Terminal order statuses: polling stops there. */
  const FINAL = { PAID: true, REFUND: true, CLOSED: true, PAYERROR: true };

  /**
   * createClient({wx, baseURL}) returns the client.
   *   wx       the WeChat API object (the real `wx`, or the shim)
   *   baseURL  the merchant server, e.g. https://shop.example.com; empty for
   *            the same origin (the emulated mini program)
   */
  function createClient(opts) {
    const wx = opts.wx;
    const baseURL = (opts.baseURL || '').replace(/\/+$/, '');
    let session = null; // {token, openid}

    /** wx.request as a Promise of {statusCode, data}; rejects on no answer. */
    function send(method, path, data, header) {
      return new Promise(function (resolve, reject) {
        wx.request({
          url: baseURL + path,
          method: method,
          data: data,
          header: header,
          dataType: 'json',
          success: function (res) { resolve(res); },
          fail: function (res) {
            reject(new APIError(0, 'network', (res && res.errMsg) || 'request:fail'));
          },
        });
      });
    }

    /** Calls the API; returns the JSON body of a 2xx, throws APIError otherwise. */
    async function call(method, path, data, extraHeader, authed) {
      const header = Object.assign({ 'Content-Type': 'application/json' }, extraHeader || {});
      for (let attempt = 0; ; attempt++) {
        if (authed) {
          if (!session) await login();
          header.Authorization = 'Bearer ' + session.token;
        }
        const res = await send(method, path, data, header);
        const body = res.data;
        if (res.statusCode >= 200 && res.statusCode < 300) return body;
        // A session expires: log in again once, then retry the same call
        // (with the same Idempotency-Key, so a retried order is the same order).
        if (res.statusCode === 401 && authed && attempt === 0) {
          session = null;
          continue;
        }
        const e = body && typeof body === 'object' && body.error ? body.error : {};
        throw new APIError(res.statusCode, e.code || 'http_' + res.statusCode, e.message || 'HTTP ' + res.statusCode);
      }
    }

    /** wx.login as a Promise of the code. */
    function wxLogin() {
      return new Promise(function (resolve, reject) {
        wx.login({
          success: function (res) {
            if (res && res.code) resolve(res.code);
            else reject(new APIError(0, 'wx_login', (res && res.errMsg) || 'login:fail no code'));
          },
          fail: function (res) { reject(new APIError(0, 'wx_login', (res && res.errMsg) || 'login:fail')); },
        });
      });
    }

    /** Logs in: wx.login's code -> POST /api/v1/login -> {token, openid}. */
    async function login() {
      const code = await wxLogin();
      const body = await call('POST', '/api/v1/login', { code: code }, null, false);
      session = { token: body.token, openid: body.openid };
      return session;
    }

    /**
     * wx.requestPayment with the server's pay_params. Resolves with
     * {ok, cancelled, errMsg}; never rejects. ok means the user finished
     * WeChat's payment sheet, not that the order is paid. pay_params also
     * holds appId, which the real client ignores (it knows its app) and
     * the emulated one uses.
     */
    function requestPayment(payParams) {
      return new Promise(function (resolve) {
        const req = Object.assign({}, payParams, {
          success: function (res) {
            resolve({ ok: true, cancelled: false, errMsg: (res && res.errMsg) || 'requestPayment:ok' });
          },
          fail: function (res) {
            const msg = (res && res.errMsg) || 'requestPayment:fail';
            resolve({ ok: false, cancelled: msg === 'requestPayment:fail cancel', errMsg: msg });
          },
        });
        wx.requestPayment(req);
      });
    }

    /**
     * Polls the order until its status is final (PAID, REFUND, CLOSED,
     * PAYERROR) or timeoutMs passes; resolves with the last order seen.
     * The server asks WeChat itself when an order stays unpaid, so a lost
     * notify does not leave us waiting forever.
     */
    async function waitForOrder(outTradeNo, o) {
      o = o || {};
      const interval = o.intervalMs || 1000;
      const deadline = Date.now() + (o.timeoutMs || 30000);
      for (;;) {
        const order = await getOrder(outTradeNo);
        if (o.onPoll) o.onPoll(order);
        if (FINAL[order.status] || Date.now() + interval > deadline) return order;
        await sleep(interval);
      }
    }

    function getOrder(outTradeNo) {
      return call('GET', '/api/v1/orders/' + encodeURIComponent(outTradeNo), undefined, null, true);
    }

    return {
      login: login,
      session: function () { return session; },
      setSession: function (s) { session = s && s.token ? { token: s.token, openid: s.openid } : null; },

      /** GET /api/v1/products -> [{sku, name, price}] (price in fen). */
      products: async function () {
        const body = await call('GET', '/api/v1/products', undefined, null, false);
        return body.products || [];
      },

      /**
       * POST /api/v1/orders. items: [{sku, quantity}]. idempotencyKey: keep
       * the same key while retrying the same checkout (a double tap, a lost
       * answer): the server then returns the same order, never a second one.
       */
      createOrder: function (items, idempotencyKey) {
        const h = idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : null;
        return call('POST', '/api/v1/orders', { items: items, trade_type: 'JSAPI' }, h, true);
      },

      getOrder: getOrder,

      /** POST /api/v1/orders/{no}/pay-params: fresh pay params for an unpaid order. */
      payParams: function (outTradeNo) {
        return call('POST', '/api/v1/orders/' + encodeURIComponent(outTradeNo) + '/pay-params', {}, null, true);
      },

      /** POST /api/v1/orders/{no}/close: closes an unpaid order. */
      closeOrder: function (outTradeNo) {
        return call('POST', '/api/v1/orders/' + encodeURIComponent(outTradeNo) + '/close', {}, null, true);
      },

      requestPayment: requestPayment,
      waitForOrder: waitForOrder,

      /**
       * The whole payment of an order the server created: requestPayment,
       * then the server's word. Resolves with {payment, order}; order is
       * what the server says after the payment sheet closed.
       */
      payOrder: async function (created, o) {
        o = o || {};
        const payment = await requestPayment(created.pay_params);
        if (o.onPayment) o.onPayment(payment);
        // Even after "requestPayment:ok" the order is paid only when the
        // server says PAID. After a failure, one look is enough.
        const order = payment.ok
          ? await waitForOrder(created.out_trade_no, o)
          : await getOrder(created.out_trade_no);
        return { payment: payment, order: order };
      },
    };
  }

  const api = { createClient: createClient, APIError: APIError, formatYuan: formatYuan, newUUID: newUUID, FINAL: FINAL };
  if (typeof module === 'object' && module && module.exports) {
    module.exports = api;
  } else {
    root.WxpayClient = api;
  }
})(typeof globalThis !== 'undefined' ? globalThis : this);
