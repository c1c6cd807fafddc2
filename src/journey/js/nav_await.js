// Runs on the document an action navigated to. arguments: [token | null, slice_ms, final, cb].
// With a token: waits for the preload watcher's mark of that token (the awaited condition held
// at `end`, epoch ms). Without: waits for the document's load event to end.
// Returns {end, origin, nav} (nav: the navigation's own timing, ms from its start), {pending}
// when the slice ended first and more follow, {timeout} when the final slice did.
var token = arguments[0];
var slice = arguments[1];
var last = arguments[2];
var callback = arguments[arguments.length - 1];
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
  if (end !== null) callback({ end: end, origin: performance.timeOrigin, nav: nav() });
  else callback(last ? { timeout: true } : { pending: true });
}
// This document is going too (a redirect by script, or the navigation was still pending):
// wait again in the next one.
window.addEventListener('pagehide', function () {
  clearTimeout(timer); clearInterval(iv);
  if (!answered) { answered = true; callback({ pending: true }); }
}, { once: true });
var e = ready();
if (e !== null) { finish(e); return; }
iv = setInterval(function () { var e = ready(); if (e !== null) finish(e); }, 5);
timer = setTimeout(function () { finish(ready()); }, slice);
