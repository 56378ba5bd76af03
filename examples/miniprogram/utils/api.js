// utils/api.js — where the merchant server is, the one client the pages
// share, and the list of recent orders kept on the phone.
//
// BASE_URL is the address of `wxpay serve`. For a real mini program it must
// be an https:// domain listed under 开发管理 → 开发设置 → 服务器域名
// (request 合法域名) in the mini program's admin console. For local
// development, in WeChat DevTools tick 详情 → 本地设置 → 不校验合法域名、
// web-view（业务域名）、TLS 版本以及 HTTPS 证书 (do not verify domain names)
// and point it at your machine, e.g. http://127.0.0.1:8080 (a phone needs
// the computer's LAN address instead).
//
// wxpay-client.js is the same file the emulated mini program of
// `wxpay serve --sim` runs (merchant/webui/static/shop/wxpay-client.js):
// keep the two identical.
const { createClient, formatYuan, newUUID, FINAL } = require('./wxpay-client.js');

const BASE_URL = 'http://127.0.0.1:8080';

const client = createClient({ wx: wx, baseURL: BASE_URL });

const RECENT_KEY = 'orders';
const RECENT_MAX = 20;

/** The recent orders of this phone: [{no, total_fee, status}], newest first. */
function recentOrders() {
  const v = wx.getStorageSync(RECENT_KEY);
  return Array.isArray(v) ? v : [];
}

/** Remembers an order (as the server last described it). */
function rememberOrder(o) {
  const list = recentOrders().filter((x) => x.no !== o.out_trade_no);
  list.unshift({ no: o.out_trade_no, total_fee: o.total_fee, status: o.status, amountText: formatYuan(o.total_fee) });
  wx.setStorageSync(RECENT_KEY, list.slice(0, RECENT_MAX));
}

module.exports = {
  BASE_URL: BASE_URL,
  client: client,
  formatYuan: formatYuan,
  newUUID: newUUID,
  FINAL: FINAL,
  recentOrders: recentOrders,
  rememberOrder: rememberOrder,
};
