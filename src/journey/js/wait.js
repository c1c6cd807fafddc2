// Waits inside the page for a condition: [cond, timeout_ms, callback].
// Returns {ok: true, at} or {ok: false, count, texts} (what was there instead, for the error).
var cond = arguments[0];
var timeout = arguments[1];
var callback = arguments[arguments.length - 1];
function visible(el) {
  if (!el.getClientRects().length) return false;
  var cs = getComputedStyle(el);
  return cs.visibility !== 'hidden' && cs.display !== 'none' && cs.opacity !== '0';
}
function holds() {
  var els = document.querySelectorAll(cond.selector);
  var found = false;
  for (var i = 0; i < els.length; i++) {
    var el = els[i];
    if (cond.visible && !visible(el)) continue;
    if (cond.text && (el.textContent || '').indexOf(cond.text) < 0) continue;
    found = true;
    break;
  }
  return cond.gone ? !found : found;
}
var done = false;
var obs, iv, timer;
function finish(ok) {
  if (done) return;
  done = true;
  if (obs) obs.disconnect();
  clearInterval(iv);
  clearTimeout(timer);
  if (ok) { callback({ ok: true, at: performance.now() }); return; }
  var els = document.querySelectorAll(cond.selector);
  var texts = [];
  var shown = 0;
  for (var i = 0; i < els.length && i < 5; i++) {
    texts.push((els[i].textContent || '').trim().slice(0, 80));
    if (visible(els[i])) shown++;
  }
  callback({ ok: false, count: els.length, shown: shown, texts: texts });
}
if (holds()) { finish(true); return; }
obs = new MutationObserver(function () { if (holds()) finish(true); });
obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
iv = setInterval(function () { if (holds()) finish(true); }, 10);
timer = setTimeout(function () { finish(holds()); }, timeout);
