// Shared by nav_await.js and await.js (prepended to each): on the document an action navigated
// to, waits for the awaited state and calls cb with {end, origin, nav} (nav: the navigation's
// own timing, ms from its start), {pending} when the slice ended first and more follow,
// {timeout} when the final slice did. token: the preload watcher's mark of the awaited
// condition (it held at `end`, epoch ms); null: the end of the document's load event.
function __synmonNavAwait(token, slice, last, cb) {
  function entry() { return performance.getEntriesByType('navigation')[0] || null; }
  function nav() {
    var n = entry();
    if (!n) return null;
    return {
      redirect_ms: n.redirectEnd - n.redirectStart,
      ttfb_ms: n.responseStart,
      dom_content_loaded_ms: n.domContentLoadedEventEnd,
      load_ms: n.loadEventEnd,
      status: n.responseStatus || null
    };
  }
  function ready() {
    if (token !== null) {
      var m = window.__synmonNav;
      return m && typeof m[token] === 'number' ? m[token] : null;
    }
    var n = entry();
    return n && n.loadEventEnd > 0 ? performance.timeOrigin + n.loadEventEnd : null;
  }
  var timer = null, iv = null, answered = false;
  function finish(end) {
    clearTimeout(timer);
    clearInterval(iv);
    if (answered) return;
    answered = true;
    if (end !== null) cb({ end: end, origin: performance.timeOrigin, nav: nav() });
    else cb(last ? { timeout: true } : { pending: true });
  }
  // This document is going too (a redirect by script, or the navigation was still pending):
  // wait again in the next one.
  window.addEventListener('pagehide', function () {
    clearTimeout(timer); clearInterval(iv);
    if (!answered) { answered = true; cb({ pending: true }); }
  }, { once: true });
  var e = ready();
  if (e !== null) { finish(e); return; }
  iv = setInterval(function () { var e = ready(); if (e !== null) finish(e); }, 5);
  timer = setTimeout(function () { finish(ready()); }, slice);
}
