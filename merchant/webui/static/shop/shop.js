/*
 * shop.js — the mini program. Written as a mini program is (App, Page,
 * setData, bindtap handlers), over `wx` and wxpay-client.js; in a real mini
 * program the same logic lives in examples/miniprogram/pages/.
 */
(function () {
  'use strict';

  const { createClient, formatYuan, newUUID, FINAL } = window.WxpayClient;
  const HISTORY_MAX = 20;
  let renderedProducts = ''; // the product list last rendered, as JSON

  App({
    globalData: { client: null },
    onLaunch() {
      // The merchant server is this page's origin ("wxpay serve --sim").
      this.globalData.client = createClient({ wx: wx, baseURL: '' });
    },
  });

  const client = getApp().globalData.client;

  const STATUS_TEXT = {
    NOTPAY: 'waiting for payment',
    PAID: 'confirmed by the server',
    REFUND: 'paid, then refunded (in part or whole)',
    CLOSED: 'closed: it can no longer be paid',
    PAYERROR: 'the payment failed',
  };

  Page({
    data: {
      loginState: 'pending',
      loginStatus: 'Logging in…',
      loginFailed: false,
      openid: '',
      productsError: '',
      products: [],          // [{sku, name, price}]
      cart: {},              // sku -> quantity
      cartCount: 0,
      cartTotal: '0.00',
      cartEmpty: true,
      paying: false,
      payDisabled: true,
      payLabel: 'Pay with WeChat Pay',
      hasOrder: false,
      order: null,           // the order the panel shows
      orderNo: '',
      orderStatus: '',
      orderStatusText: '',
      orderAmount: '',
      orderPaidAt: '',
      orderMessage: '',
      orderUnpaid: false,
      history: [],           // [{no, total_fee, status}]
      historyEmpty: true,
    },

    // The Idempotency-Key of the checkout in progress: made on the first
    // tap of "Pay" and kept while the same cart is being paid, so a double
    // tap, or a tap after a lost answer, gets the same order back.
    checkoutKey: null,
    checkoutCart: '',

    async onLoad() {
      await Promise.all([this.login(), this.loadProducts()]);
      this.refreshHistory();
    },

    // ---- login -----------------------------------------------------------

    async login() {
      this.setData({ loginState: 'pending', loginStatus: 'Logging in…', loginFailed: false });
      try {
        const s = await client.login();
        this.setData({ loginState: 'ok', loginStatus: 'Logged in', openid: s.openid });
        this.loadHistory();
      } catch (e) {
        this.setData({ loginState: 'error', loginStatus: 'Login failed: ' + e.message, loginFailed: true });
      }
      this.updateCart();
    },

    retryLogin() {
      this.login().then(() => this.refreshHistory());
    },

    // ---- products and cart -------------------------------------------------

    async loadProducts() {
      try {
        const products = await client.products();
        this.setData({ products: products, productsError: '' });
      } catch (e) {
        this.setData({ productsError: 'Could not load the products: ' + e.message });
      }
    },

    addToCart(e) {
      const sku = e.currentTarget.dataset.sku;
      const cart = Object.assign({}, this.data.cart);
      cart[sku] = Math.min((cart[sku] || 0) + 1, 999);
      this.updateCart(cart);
    },

    removeFromCart(e) {
      const sku = e.currentTarget.dataset.item;
      const cart = Object.assign({}, this.data.cart);
      if (cart[sku] > 1) cart[sku]--;
      else delete cart[sku];
      this.updateCart(cart);
    },

    clearCart() {
      this.updateCart({});
    },

    updateCart(cart) {
      cart = cart || this.data.cart;
      let count = 0;
      let total = 0; // fen, an integer: prices are integers
      for (const p of this.data.products) {
        const q = cart[p.sku] || 0;
        count += q;
        total += q * p.price;
      }
      this.setData({
        cart: cart,
        cartCount: count,
        cartTotal: formatYuan(total),
        cartEmpty: count === 0,
        payDisabled: count === 0 || this.data.paying || this.data.loginState !== 'ok',
      });
    },

    cartItems() {
      // The client names products and quantities; the server sets the price.
      return this.data.products
        .filter((p) => this.data.cart[p.sku] > 0)
        .map((p) => ({ sku: p.sku, quantity: this.data.cart[p.sku] }));
    },

    // ---- paying ------------------------------------------------------------

    async pay() {
      if (this.data.paying) return; // the button is disabled too; the key is what really protects
      const items = this.cartItems();
      if (items.length === 0) return;
      const cartKey = JSON.stringify(items);
      if (!this.checkoutKey || this.checkoutCart !== cartKey) {
        this.checkoutKey = newUUID();
        this.checkoutCart = cartKey;
      }
      this.setData({ paying: true, payDisabled: true, payLabel: 'Paying…' });
      wx.showLoading({ title: 'Creating the order' });
      try {
        let created = await client.createOrder(items, this.checkoutKey);
        this.remember(created);
        this.showOrder(created, 'Order created. Opening WeChat Pay…');
        wx.pageScrollTo({ selector: '#order-panel', offsetTop: 8 });
        if (created.status === 'NOTPAY' && !created.pay_params) {
          created = await client.payParams(created.out_trade_no);
        }
        wx.hideLoading();
        if (created.status !== 'NOTPAY') {
          await this.finish(created, null);
          return;
        }
        await this.payCreated(created);
      } catch (e) {
        wx.hideLoading();
        this.setData({ orderMessage: 'Could not pay: ' + e.message });
        wx.showModal({ title: 'Could not pay', content: e.message, showCancel: false });
      } finally {
        this.setData({ paying: false, payLabel: 'Pay with WeChat Pay' });
        this.updateCart();
      }
    },

    /** requestPayment, then the server's word, then the result shown. */
    async payCreated(created) {
      const { payment, order } = await client.payOrder(created, {
        onPayment: (p) => this.setData({
          orderMessage: p.ok
            ? 'WeChat says "' + p.errMsg + '". Waiting for the server to confirm…'
            : 'WeChat says "' + p.errMsg + '".',
        }),
        onPoll: (o) => this.showOrder(o),
      });
      await this.finish(order, payment);
    },

    async finish(order, payment) {
      this.showOrder(order);
      this.remember(order);
      if (order.status === 'PAID' || order.status === 'REFUND') {
        this.checkoutKey = null;
        this.updateCart({});
        this.setData({ orderMessage: 'The server confirms the payment.' });
        wx.showToast({ title: 'Paid', icon: 'success' });
      } else if (payment && payment.cancelled) {
        this.setData({ orderMessage: 'You closed the payment sheet. The order stays unpaid: pay it again or close it.' });
        wx.showToast({ title: 'Payment cancelled', icon: 'none' });
      } else if (payment && !payment.ok) {
        this.setData({ orderMessage: 'The payment failed: "' + payment.errMsg + '". The order stays unpaid.' });
        wx.showModal({ title: 'Payment failed', content: payment.errMsg, showCancel: false });
      } else if (order.status === 'NOTPAY') {
        this.setData({ orderMessage: 'WeChat said ok, but the server has not confirmed the payment yet. Check again in a moment.' });
      } else {
        this.checkoutKey = null;
        this.setData({ orderMessage: '' });
      }
      this.refreshHistory();
    },

    /** Pays an unpaid order again, with fresh pay parameters. */
    async payAgain() {
      const no = this.data.orderNo;
      if (!no || this.data.paying) return;
      this.setData({ paying: true, payDisabled: true });
      try {
        const created = await client.payParams(no);
        if (created.status !== 'NOTPAY' || !created.pay_params) await this.finish(created, null);
        else await this.payCreated(created);
      } catch (e) {
        this.setData({ orderMessage: 'Could not pay: ' + e.message });
      } finally {
        this.setData({ paying: false });
        this.updateCart();
      }
    },

    async checkAgain() {
      const no = this.data.orderNo;
      if (!no) return;
      try {
        const o = await client.getOrder(no);
        await this.finish(o, null);
      } catch (e) {
        this.setData({ orderMessage: 'Could not read the order: ' + e.message });
      }
    },

    async closeOrder() {
      const no = this.data.orderNo;
      if (!no) return;
      try {
        await client.closeOrder(no);
        this.checkoutKey = null;
        const o = await client.getOrder(no);
        this.showOrder(o, 'The order is closed.');
        this.remember(o);
      } catch (e) {
        this.setData({ orderMessage: 'Could not close the order: ' + e.message });
      }
    },

    showOrder(o, message) {
      const patch = {
        hasOrder: true,
        order: o,
        orderNo: o.out_trade_no,
        orderStatus: o.status,
        orderStatusText: STATUS_TEXT[o.status] || o.status,
        orderAmount: '¥' + formatYuan(o.total_fee),
        orderPaidAt: o.paid_at ? new Date(o.paid_at).toLocaleString() : '',
        orderUnpaid: o.status === 'NOTPAY',
      };
      if (message !== undefined) patch.orderMessage = message;
      this.setData(patch);
    },

    // ---- order history (kept on the device, per WeChat user) --------------

    historyKey() {
      return 'orders.' + (this.data.openid || 'anonymous');
    },

    loadHistory() {
      const h = wx.getStorageSync(this.historyKey());
      const history = Array.isArray(h) ? h : [];
      this.setData({ history: history, historyEmpty: history.length === 0 });
    },

    remember(o) {
      const history = this.data.history.filter((x) => x.no !== o.out_trade_no);
      history.unshift({ no: o.out_trade_no, total_fee: o.total_fee, status: o.status, created_at: o.created_at || '' });
      history.length = Math.min(history.length, HISTORY_MAX);
      wx.setStorageSync(this.historyKey(), history);
      this.setData({ history: history, historyEmpty: false });
    },

    async refreshHistory() {
      if (this.data.loginState !== 'ok') return;
      const history = this.data.history.slice();
      await Promise.all(history.map(async (h, i) => {
        if (FINAL[h.status] && h.status !== 'PAID') return;
        try {
          const o = await client.getOrder(h.no);
          history[i] = Object.assign({}, h, { status: o.status, total_fee: o.total_fee });
        } catch (e) {
          if (e.status === 404) history[i] = Object.assign({}, h, { status: 'UNKNOWN' });
        }
      }));
      wx.setStorageSync(this.historyKey(), history);
      this.setData({ history: history, historyEmpty: history.length === 0 });
    },

    async openOrder(e) {
      const no = e.currentTarget.dataset.no;
      try {
        const o = await client.getOrder(no);
        this.showOrder(o, '');
        this.remember(o);
        wx.pageScrollTo({ selector: '#order-panel', offsetTop: 8 });
      } catch (err) {
        wx.showToast({ title: err.message, icon: 'none' });
      }
    },

    // ---- lists (the page's wx:for) ----------------------------------------

    render(d) {
      renderProducts(d);
      renderHistory(d);
    },
  });

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  function renderProducts(d) {
    const list = document.getElementById('product-list');
    const key = JSON.stringify(d.products);
    if (key !== renderedProducts) {
      renderedProducts = key;
      list.replaceChildren(...d.products.map((p) => el('li', { class: 'product', 'data-product': p.sku },
        el('div', { class: 'product-thumb', 'aria-hidden': 'true' }, (p.name || p.sku).slice(0, 1).toUpperCase()),
        el('div', { class: 'product-info' },
          el('div', { class: 'product-name' }, p.name || p.sku),
          el('div', { class: 'product-price' }, '¥' + formatYuan(p.price))),
        el('div', { class: 'stepper' },
          el('button', { type: 'button', class: 'step minus', 'data-tap': 'removeFromCart', 'data-item': p.sku, 'aria-label': 'Remove one ' + (p.name || p.sku) }, '−'),
          el('span', { class: 'qty', 'data-qty': p.sku }, '0'),
          el('button', { type: 'button', class: 'step plus', 'data-tap': 'addToCart', 'data-sku': p.sku, 'aria-label': 'Add one ' + (p.name || p.sku) }, '+')))));
    }
    list.querySelectorAll('[data-qty]').forEach((q) => {
      const n = d.cart[q.dataset.qty] || 0;
      q.textContent = String(n);
      q.closest('.product').classList.toggle('in-cart', n > 0);
      q.previousElementSibling.disabled = n === 0;
    });
  }

  function renderHistory(d) {
    const list = document.getElementById('order-history');
    list.replaceChildren(...d.history.map((h) => el('li', { 'data-history': h.no },
      el('button', { type: 'button', class: 'history-item', 'data-tap': 'openOrder', 'data-no': h.no },
        el('span', { class: 'history-no' }, h.no),
        el('span', { class: 'history-amount' }, '¥' + formatYuan(h.total_fee)),
        el('span', { class: 'badge', 'data-status': h.status }, h.status)))));
  }
})();
