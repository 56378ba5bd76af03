/*
 * money.js — yuan and fen without floating point. Amounts travel as integer
 * fen; people read and type yuan. 0.1 + 0.2 is not 0.3 in binary floating
 * point, so neither direction ever divides or multiplies a fractional number.
 */
(function (root) {
  'use strict';

  /** 1234 -> "12.34", -5 -> "-0.05". */
  function fenToYuan(fen) {
    const n = Number(fen);
    if (!Number.isSafeInteger(n)) return '?';
    const abs = Math.abs(n);
    const cents = abs % 100;
    return (n < 0 ? '-' : '') + String((abs - cents) / 100) + '.' + (cents < 10 ? '0' : '') + String(cents);
  }

  /**
   * "12.3" -> 1230, "0.01" -> 1, "12" -> 1200, with string math only.
   * Throws an Error saying what is wrong for anything else: a sign, more
   * than 2 decimals, letters, an empty string, or more than 1,000,000,000.00.
   */
  function yuanToFen(text) {
    const s = String(text == null ? '' : text).trim();
    if (s === '') throw new Error('enter an amount in yuan, such as 12.50');
    const m = /^(\d+)(?:\.(\d*))?$/.exec(s);
    if (!m) {
      if (/^\d*\.\d{3,}$/.test(s)) throw new Error('at most 2 decimals: yuan have 100 fen');
      throw new Error('"' + s + '" is not an amount in yuan (digits, and at most 2 decimals)');
    }
    const whole = m[1].replace(/^0+(?=\d)/, '');
    const frac = m[2] || '';
    if (frac.length > 2) throw new Error('at most 2 decimals: yuan have 100 fen');
    if (whole.length > 10) throw new Error('the amount is too large');
    const digits = (whole + (frac + '00').slice(0, 2)).replace(/^0+(?=\d)/, '');
    return Number(digits); // at most 12 digits: exact in a double
  }

  root.Money = { fenToYuan: fenToYuan, yuanToFen: yuanToFen };
})(typeof globalThis !== 'undefined' ? globalThis : this);
