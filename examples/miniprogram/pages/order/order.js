// pages/order/order.js — one order, as the server says it is.
//
// Opened with ?no=<out_trade_no>&wait=1 right after "requestPayment:ok": it
// then asks the server until the order is PAID (the server heard WeChat's
// notify, or asked WeChat itself), for up to 30 s. The mini program trusts
// the server's answer, never the payment sheet's alone.
const { client, formatYuan, rememberOrder } = require('../../utils/api.js');

const STATUS_TEXT = {
  NOTPAY: 'waiting for payment',
  PAID: 'paid',
  REFUND: 'paid, (partly) refunded',
  CLOSED: 'closed',
  PAYERROR: 'payment failed',
};

Page({
  data: {
    no: '',
    status: '',
    statusText: '',
    amountText: '',
    paidAt: '',
    message: '',
    refunds: [],
    busy: false,
  },

  onLoad(query) {
    this.setData({ no: decodeURIComponent(query.no || '') });
    this.refresh(query.wait === '1');
  },

  onUnload() {
    this.gone = true;
  },

  onPullDownRefresh() {
    this.refresh(false).then(() => wx.stopPullDownRefresh());
  },

  async refresh(wait) {
    try {
      const order = wait
        ? await client.waitForOrder(this.data.no, { onPoll: (o) => this.show(o) })
        : await client.getOrder(this.data.no);
      this.show(order);
      if (wait && order.status === 'NOTPAY') {
        this.setData({ message: 'WeChat said ok, but the server has not confirmed the payment yet. Pull down to check again.' });
      }
    } catch (e) {
      if (!this.gone) this.setData({ message: 'Could not read the order: ' + e.message });
    }
  },

  show(o) {
    if (this.gone) return;
    rememberOrder(o);
    this.setData({
      status: o.status,
      statusText: STATUS_TEXT[o.status] || '',
      amountText: formatYuan(o.total_fee),
      paidAt: o.paid_at ? new Date(o.paid_at).toLocaleString() : '',
      refunds: (o.refunds || []).map((r) => Object.assign({}, r, { amountText: formatYuan(r.refund_fee) })),
      message: o.status === 'PAID' ? 'The server confirms the payment.' : this.data.message,
    });
  },

  async onPayAgain() {
    this.setData({ busy: true, message: '' });
    try {
      // Fresh pay parameters for the same order (a prepay id lives 2 hours).
      const p = await client.payParams(this.data.no);
      if (p.status === 'NOTPAY' && p.pay_params) {
        const payment = await client.requestPayment(p.pay_params);
        if (payment.ok) await this.refresh(true);
        else this.setData({ message: payment.cancelled ? 'You cancelled the payment.' : payment.errMsg });
      } else {
        this.show(p);
      }
    } catch (e) {
      this.setData({ message: 'Could not pay: ' + e.message });
    } finally {
      if (!this.gone) this.setData({ busy: false });
    }
  },

  onClose() {
    wx.showModal({
      title: 'Close the order?',
      content: 'A closed order can no longer be paid.',
      success: async (res) => {
        if (!res.confirm) return;
        this.setData({ busy: true });
        try {
          await client.closeOrder(this.data.no);
          await this.refresh(false);
        } catch (e) {
          this.setData({ message: 'Could not close: ' + e.message });
        } finally {
          if (!this.gone) this.setData({ busy: false });
        }
      },
    });
  },
});
