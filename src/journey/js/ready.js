// Waits inside the page until the element an action targets is there (and visible), then,
// when asked, arms in-page timing for the action in the same call, and returns the element:
// one WebDriver command instead of three (wait, arm, find).
// arguments: [selector, arm {cond, start, token, follow} | null, slice_ms, callback]
// Returns {ok: true, el, pre, blank} (pre: the awaited condition already held before the action;
// blank: an enabled, writable text field or editable element with nothing in it, which a fill
// need not clear first), or {ok: false, count, shown, texts} when the slice ended first.
var selector = arguments[0];
var arm = arguments[1];
var slice = arguments[2];
var callback = arguments[arguments.length - 1];
var done = false;
var obs, iv, timer;
function finish(el) {
  if (done) return;
  done = true;
  if (obs) obs.disconnect();
  clearInterval(iv);
  clearTimeout(timer);
  if (el) {
    callback(__synmonFound(el, arm));
    return;
  }
  var els = document.querySelectorAll(selector);
  var shown = 0;
  for (var i = 0; i < els.length; i++) { if (__synmonVisible(els[i])) shown++; }
  callback({ ok: false, count: els.length, shown: shown, texts: [] });
}
// The document is being replaced: answer now, and the caller looks again in the next one.
window.addEventListener('pagehide', function () { finish(null); }, { once: true });
var el = __synmonFind(selector);
if (el) { finish(el); return; }
obs = new MutationObserver(function () { var e = __synmonFind(selector); if (e) finish(e); });
obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
iv = setInterval(function () { var e = __synmonFind(selector); if (e) finish(e); }, 10);
timer = setTimeout(function () { finish(__synmonFind(selector)); }, slice);
