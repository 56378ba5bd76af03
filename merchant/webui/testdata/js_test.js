// js_test.js — run by TestJavaScript with node: the money helpers and the
// mini program's client (wxpay-client.js) against a fake `wx`. Prints "ok"
// and exits 0, or prints the failures and exits 1.
'use strict';

const path = require('path');
const assert = require('assert');

const dir = process.argv[2];
require(path.join(dir, 'common', 'money.js'));
const { fenToYuan, yuanToFen } = globalThis.Money;
const client = require(path.join(dir, 'shop', 'wxpay-client.js'));

const failures = [];
function check(name, f) {
  return Promise.resolve().then(f).catch((e) => failures.push(name + ': ' + (e && e.stack || e)));
}

async function main() {
  await check('fenToYuan', () => {
    for (const [fen, want] of [[0, '0.00'], [1, '0.01'], [10, '0.10'], [99, '0.99'], [100, '1.00'], [1999, '19.99'],
      [123456, '1234.56'], [-5, '-0.05'], [-12345, '-123.45'], [100000000, '1000000.00']]) {
      assert.strictEqual(fenToYuan(fen), want, 'fenToYuan(' + fen + ')');
      assert.strictEqual(client.formatYuan(fen), want, 'formatYuan(' + fen + ')');
    }
    assert.strictEqual(fenToYuan(1.5), '?');
    assert.strictEqual(client.formatYuan('x'), '?');
  });

  await check('yuanToFen', () => {
    // 19.99 * 100 is 1998.9999999999998 in floating point: string math is exact.
    for (const [s, want] of [['19.99', 1999], ['0.01', 1], ['0.1', 10], ['1', 100], ['1.', 100], ['007.50', 750],
      [' 12.34 ', 1234], ['0', 0], ['0.00', 0], ['1.10', 110], ['9999999999.99', 999999999999], ['4.35', 435], ['1.005'.slice(0, 4), 100]]) {
      assert.strictEqual(yuanToFen(s), want, 'yuanToFen(' + JSON.stringify(s) + ')');
    }
    for (const s of ['', ' ', '1.234', '0.001', '-1', '+1', '1e2', 'abc', '1,5', '1.2.3', '.5', '12345678901', 'Infinity', '0x10', '１']) {
      assert.throws(() => yuanToFen(s), Error, 'yuanToFen(' + JSON.stringify(s) + ') should throw');
    }
    assert.throws(() => yuanToFen('1.234'), /2 decimals/);
  });

  await check('newUUID', () => {
    const seen = new Set();
    for (let i = 0; i < 100; i++) {
      const u = client.newUUID();
      assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(u);
    }
    assert.strictEqual(seen.size, 100);
  });

  // A fake WeChat and merchant server.
  function fakeWx(opts) {
    const log = [];
    let codes = 0;
    let sessions = 0;
    let polls = 0;
    const wx = {
      log: log,
      login(o) { setTimeout(() => o.success({ code: 'code' + (++codes), errMsg: 'login:ok' })); },
      requestPayment(o) {
        log.push({ pay: o });
        setTimeout(() => (opts.payOutcome === 'ok' ? o.success({ errMsg: 'requestPayment:ok' }) : o.fail({ errMsg: opts.payOutcome })));
      },
      request(o) {
        log.push({ method: o.method, url: o.url, header: Object.assign({}, o.header), data: o.data });
        const reply = (statusCode, data) => setTimeout(() => o.success({ statusCode: statusCode, data: data, header: {}, errMsg: 'request:ok' }));
        const auth = (o.header || {}).Authorization || '';
        const authed = () => {
          if (!auth.startsWith('Bearer tok')) { reply(401, { error: { code: 'unauthorized', message: 'log in' } }); return false; }
          if (opts.expireFirst && auth === 'Bearer tok1') { reply(401, { error: { code: 'unauthorized', message: 'expired' } }); return false; }
          return true;
        };
        if (o.url === opts.base + '/api/v1/login' && o.method === 'POST') {
          assert.match(o.data.code, /^code\d+$/);
          return reply(200, { token: 'tok' + (++sessions), openid: 'o1' });
        }
        if (o.url === opts.base + '/api/v1/products' && o.method === 'GET') {
          return reply(200, { products: [{ sku: 'coffee', name: 'Coffee', price: 1200 }] });
        }
        if (o.url === opts.base + '/api/v1/orders' && o.method === 'POST') {
          if (!authed()) return;
          assert.deepStrictEqual(o.data, { items: [{ sku: 'coffee', quantity: 2 }], trade_type: 'JSAPI' });
          return reply(201, {
            out_trade_no: 'T1', total_fee: 2400, status: 'NOTPAY',
            pay_params: { appId: 'wx426b3015555a46be', timeStamp: '1764300000', nonceStr: 'n', package: 'prepay_id=wx1', signType: 'MD5', paySign: 'S' },
          });
        }
        if (o.url === opts.base + '/api/v1/orders/T1' && o.method === 'GET') {
          if (!authed()) return;
          polls++;
          return reply(200, { out_trade_no: 'T1', total_fee: 2400, status: polls >= opts.paidAfter ? 'PAID' : 'NOTPAY', items: [], refunds: [] });
        }
        if (o.url === opts.base + '/api/v1/orders/T2' && o.method === 'GET') {
          return reply(404, { error: { code: 'not_found', message: 'no such order' } });
        }
        if (opts.networkDown) return setTimeout(() => o.fail({ errMsg: 'request:fail timeout' }));
        reply(404, { error: { code: 'not_found', message: 'no such route' } });
      },
    };
    return wx;
  }

  await check('pay flow: ok, then polls until PAID', async () => {
    const base = 'https://shop.example.com';
    const wx = fakeWx({ base: base, payOutcome: 'ok', paidAfter: 3 });
    const c = client.createClient({ wx: wx, baseURL: base + '/' });
    const products = await c.products();
    assert.strictEqual(products[0].price, 1200);
    const created = await c.createOrder([{ sku: 'coffee', quantity: 2 }], 'key-1');
    const orderReq = wx.log.find((x) => x.url === base + '/api/v1/orders');
    assert.strictEqual(orderReq.header['Idempotency-Key'], 'key-1');
    assert.strictEqual(orderReq.header.Authorization, 'Bearer tok1');
    const polled = [];
    const r = await c.payOrder(created, { intervalMs: 5, timeoutMs: 2000, onPoll: (o) => polled.push(o.status) });
    assert.deepStrictEqual(r.payment, { ok: true, cancelled: false, errMsg: 'requestPayment:ok' });
    assert.strictEqual(r.order.status, 'PAID');
    assert.deepStrictEqual(polled, ['NOTPAY', 'NOTPAY', 'PAID']);
    const pay = wx.log.find((x) => x.pay).pay;
    assert.strictEqual(pay.paySign, 'S');
    assert.strictEqual(pay.package, 'prepay_id=wx1');
  });

  await check('pay flow: cancel looks once and does not poll', async () => {
    const wx = fakeWx({ base: '', payOutcome: 'requestPayment:fail cancel', paidAfter: 100 });
    const c = client.createClient({ wx: wx });
    const created = await c.createOrder([{ sku: 'coffee', quantity: 2 }], 'key-2');
    const r = await c.payOrder(created, { intervalMs: 5, timeoutMs: 2000 });
    assert.strictEqual(r.payment.cancelled, true);
    assert.strictEqual(r.order.status, 'NOTPAY');
    assert.strictEqual(wx.log.filter((x) => x.url === '/api/v1/orders/T1').length, 1);
  });

  await check('pay flow: ok but never confirmed stops at the timeout', async () => {
    const wx = fakeWx({ base: '', payOutcome: 'ok', paidAfter: 1e9 });
    const c = client.createClient({ wx: wx });
    const created = await c.createOrder([{ sku: 'coffee', quantity: 2 }], 'key-3');
    const r = await c.payOrder(created, { intervalMs: 5, timeoutMs: 60 });
    assert.strictEqual(r.payment.ok, true);
    assert.strictEqual(r.order.status, 'NOTPAY', 'requestPayment:ok alone never makes the order paid');
  });

  await check('an expired session logs in again and retries with the same key', async () => {
    const wx = fakeWx({ base: '', payOutcome: 'ok', paidAfter: 1, expireFirst: true });
    const c = client.createClient({ wx: wx });
    await c.login();
    await c.createOrder([{ sku: 'coffee', quantity: 2 }], 'key-4');
    const tries = wx.log.filter((x) => x.url === '/api/v1/orders');
    assert.strictEqual(tries.length, 2);
    assert.strictEqual(tries[0].header.Authorization, 'Bearer tok1');
    assert.strictEqual(tries[1].header.Authorization, 'Bearer tok2');
    assert.strictEqual(tries[1].header['Idempotency-Key'], 'key-4');
  });

  await check('errors carry the status and the code', async () => {
    const wx = fakeWx({ base: '', payOutcome: 'ok', paidAfter: 1 });
    const c = client.createClient({ wx: wx });
    await assert.rejects(c.getOrder('T2'), (e) => e instanceof client.APIError && e.status === 404 && e.code === 'not_found' && e.message === 'no such order');
    const down = client.createClient({ wx: fakeWx({ base: '', networkDown: true }) });
    await assert.rejects(down.closeOrder('T9'), (e) => e.status === 0 && e.code === 'network');
  });

  if (failures.length) {
    console.log(failures.join('\n\n'));
    process.exit(1);
  }
  console.log('ok');
}

main();
