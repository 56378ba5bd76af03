// pages/index/index.js — products, cart, and paying.
//
// Pay = create the order on the server (which prices the cart, calls
// unifiedorder and signs the pay parameters), then wx.requestPayment with
// those parameters, then the order page asks the server until it says PAID.
// The mini program never signs anything: paySign is made on the server with
// the API key, which never leaves it.
const app = getApp();
const { client, formatYuan, newUUID, recentOrders, rememberOrder } = require('../../utils/api.js');

Page({
  data: {
    loginState: '',
    loginStatus: 'Logging in…',
    products: [], // [{sku, name, price, priceText}]
    cart: {},     // sku -> quantity
    count: 0,
    totalText: '0.00',
    paying: false,
    recent: [],
  },

  // The Idempotency-Key of the checkout in progress: made on the first tap
  // and kept while the same cart is being paid, so a double tap, or a tap
  // after a lost answer, gets the same order back, never a second one.
  checkoutKey: '',
  checkoutCart: '',

  async onLoad() {
    try {
      await app.ready;
      this.setData({ loginState: 'ok', loginStatus: 'Logged in' });
    } catch (e) {
      this.setData({ loginState: 'error', loginStatus: 'Login failed: ' + e.message });
    }
    try {
      const products = await client.products();
      this.setData({ products: products.map((p) => Object.assign({}, p, { priceText: formatYuan(p.price) })) });
    } catch (e) {
      wx.showToast({ title: 'No products: ' + e.message, icon: 'none' });
    }
  },

  onShow() {
    this.setData({ recent: recentOrders() });
  },

  onPlus(e) {
    const sku = e.currentTarget.dataset.sku;
    const cart = Object.assign({}, this.data.cart);
    cart[sku] = Math.min((cart[sku] || 0) + 1, 999);
    this.updateCart(cart);
  },

  onMinus(e) {
    const sku = e.currentTarget.dataset.sku;
    const cart = Object.assign({}, this.data.cart);
    if (cart[sku] > 1) cart[sku]--;
    else delete cart[sku];
    this.updateCart(cart);
  },

  updateCart(cart) {
    let count = 0;
    let total = 0; // fen: integers all the way
    for (const p of this.data.products) {
      const q = cart[p.sku] || 0;
      count += q;
      total += q * p.price;
    }
    this.setData({ cart: cart, count: count, totalText: formatYuan(total) });
  },

  async onPay() {
    if (this.data.paying) return;
    const items = this.data.products
      .filter((p) => this.data.cart[p.sku] > 0)
      .map((p) => ({ sku: p.sku, quantity: this.data.cart[p.sku] }));
    if (items.length === 0) return;
    const cartKey = JSON.stringify(items);
    if (!this.checkoutKey || this.checkoutCart !== cartKey) {
      this.checkoutKey = newUUID();
      this.checkoutCart = cartKey;
    }
    this.setData({ paying: true });
    try {
      let order = await client.createOrder(items, this.checkoutKey);
      rememberOrder(order);
      if (order.status === 'NOTPAY' && !order.pay_params) {
        order = await client.payParams(order.out_trade_no); // the same order, fresh parameters
      }
      let wait = false;
      if (order.status === 'NOTPAY') {
        const payment = await client.requestPayment(order.pay_params);
        if (payment.ok) {
          // The user finished WeChat's sheet. The order page asks the server
          // whether the order is paid: "requestPayment:ok" alone is not proof.
          wait = true;
          this.checkoutKey = '';
          this.updateCart({});
        } else if (payment.cancelled) {
          wx.showToast({ title: 'Payment cancelled', icon: 'none' });
        } else {
          wx.showModal({ title: 'Payment failed', content: payment.errMsg, showCancel: false });
        }
      }
      wx.navigateTo({ url: '/pages/order/order?no=' + encodeURIComponent(order.out_trade_no) + '&wait=' + (wait ? 1 : 0) });
    } catch (e) {
      wx.showModal({ title: 'Could not pay', content: e.message, showCancel: false });
    } finally {
      this.setData({ paying: false });
    }
  },

  onOpenOrder(e) {
    wx.navigateTo({ url: '/pages/order/order?no=' + encodeURIComponent(e.currentTarget.dataset.no) });
  },
});
