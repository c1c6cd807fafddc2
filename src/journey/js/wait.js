// Waits inside the page for a condition: [cond, timeout_ms, callback].
// Returns {ok: true, ms} (ms: how long it waited, by the page's own clock) or {ok: false,
// count, shown, texts} (what was there instead, for the error).
var cond = arguments[0];
var timeout = arguments[1];
var callback = arguments[arguments.length - 1];
var began = performance.now();
function holds() { return __synmonHolds(cond); }
var done = false;
var obs, iv, timer;
function finish(ok) {
  if (done) return;
  done = true;
  if (obs) obs.disconnect();
  clearInterval(iv);
  clearTimeout(timer);
  if (ok) { callback({ ok: true, ms: performance.now() - began }); return; }
  var els = document.querySelectorAll(cond.selector);
  var texts = [];
  var shown = 0;
  for (var i = 0; i < els.length && i < 5; i++) {
    texts.push((els[i].textContent || '').trim().slice(0, 80));
    if (__synmonVisible(els[i])) shown++;
  }
  callback({ ok: false, count: els.length, shown: shown, texts: texts });
}
// The document is being replaced: answer now (not found here), and the caller waits again in
// the next document, instead of the WebDriver command waiting for its script timeout.
window.addEventListener('pagehide', function () { finish(false); }, { once: true });
if (holds()) { finish(true); return; }
obs = new MutationObserver(function () { if (holds()) finish(true); });
obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
iv = setInterval(function () { if (holds()) finish(true); }, 10);
timer = setTimeout(function () { finish(holds()); }, timeout);
