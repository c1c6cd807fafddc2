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
var target = { selector: selector, text: null, visible: true, gone: false };
function found() {
  var els = document.querySelectorAll(selector);
  for (var i = 0; i < els.length; i++) { if (__synmonVisible(els[i])) return els[i]; }
  return null;
}
function blank(el) {
  if (el.disabled || el.readOnly) return false;
  // A number field holding text it cannot parse reads '' too (badInput): that one is cleared.
  if (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') {
    return el.value === '' && !(el.validity && el.validity.badInput);
  }
  return el.isContentEditable === true && el.innerHTML === '';
}
var done = false;
var obs, iv, timer;
function finish(el) {
  if (done) return;
  done = true;
  if (obs) obs.disconnect();
  clearInterval(iv);
  clearTimeout(timer);
  if (el) {
    var pre = arm ? __synmonArm(arm.cond, arm.start, arm.token, arm.follow) : false;
    callback({ ok: true, el: el, pre: pre, blank: blank(el) });
    return;
  }
  var els = document.querySelectorAll(selector);
  var shown = 0;
  for (var i = 0; i < els.length; i++) { if (__synmonVisible(els[i])) shown++; }
  callback({ ok: false, count: els.length, shown: shown, texts: [] });
}
// The document is being replaced: answer now, and the caller looks again in the next one.
window.addEventListener('pagehide', function () { finish(null); }, { once: true });
var el = found();
if (el) { finish(el); return; }
obs = new MutationObserver(function () { var e = found(); if (e) finish(e); });
obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
iv = setInterval(function () { var e = found(); if (e) finish(e); }, 10);
timer = setTimeout(function () { finish(found()); }, slice);
