/*
 * mp.js — just enough of the mini-program runtime to write shop.js the way
 * a mini program is written: App({…}) once, Page({data, onLoad, handlers})
 * for the page, this.setData({…}) to change what is shown.
 *
 * The markup plays WXML's part with a few attributes:
 *   data-text="name"      textContent = data.name        ({{name}})
 *   data-show="name"      shown when data.name is truthy  (wx:if)
 *   data-hide="name"      hidden when data.name is truthy
 *   data-disabled="name"  disabled when data.name is truthy
 *   data-state-from="name"  data-state attribute = data.name (for styling)
 *   data-tap="handler"    click calls page.handler(event)  (bindtap), with
 *                         event.currentTarget.dataset as in a mini program
 * and a page's render(data) builds its lists (wx:for).
 */
(function () {
  'use strict';

  let app = null;

  window.App = function (def) {
    app = def;
    app.globalData = app.globalData || {};
    if (typeof app.onLaunch === 'function') app.onLaunch();
  };

  window.getApp = function () { return app; };

  function get(data, path) {
    return path.split('.').reduce(function (v, k) { return v == null ? undefined : v[k]; }, data);
  }

  function apply(rootEl, page) {
    const d = page.data;
    rootEl.querySelectorAll('[data-text]').forEach(function (el) {
      const v = get(d, el.dataset.text);
      const s = v == null ? '' : String(v);
      if (el.textContent !== s) el.textContent = s;
    });
    rootEl.querySelectorAll('[data-show]').forEach(function (el) { el.hidden = !get(d, el.dataset.show); });
    rootEl.querySelectorAll('[data-hide]').forEach(function (el) { el.hidden = !!get(d, el.dataset.hide); });
    rootEl.querySelectorAll('[data-disabled]').forEach(function (el) { el.disabled = !!get(d, el.dataset.disabled); });
    rootEl.querySelectorAll('[data-state-from]').forEach(function (el) {
      el.setAttribute('data-state', String(get(d, el.dataset.stateFrom) || ''));
    });
    if (typeof page.render === 'function') page.render(d);
  }

  window.Page = function (def) {
    const page = Object.assign({}, def);
    page.data = JSON.parse(JSON.stringify(def.data || {}));
    let scheduled = false;
    const rootEl = document.getElementById('page') || document.body;

    /** Merges patch into data and updates the view (batched per task). */
    page.setData = function (patch, cb) {
      Object.assign(page.data, patch);
      if (!scheduled) {
        scheduled = true;
        Promise.resolve().then(function () {
          scheduled = false;
          apply(rootEl, page);
          if (typeof cb === 'function') cb();
        });
      } else if (typeof cb === 'function') {
        Promise.resolve().then(cb);
      }
    };

    function start() {
      document.addEventListener('click', function (ev) {
        const el = ev.target.closest('[data-tap]');
        if (!el || el.disabled || !rootEl.contains(el)) return;
        const fn = page[el.dataset.tap];
        if (typeof fn !== 'function') return;
        ev.preventDefault();
        fn.call(page, { type: 'tap', target: ev.target, currentTarget: { dataset: Object.assign({}, el.dataset) } });
      });
      apply(rootEl, page);
      if (typeof page.onLoad === 'function') page.onLoad({});
      if (typeof page.onShow === 'function') page.onShow();
    }
    // Like WeChat, load the page after the page's script has run to its end.
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else setTimeout(start, 0);
    return page;
  };
})();
