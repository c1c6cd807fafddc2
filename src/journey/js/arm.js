// Arms in-page timing for one user action (run with WebDriver "execute" just before it).
// arguments: [cond {selector, text, visible, gone}, mode "first"|"last_input"]
// Records the timestamp of the user's first input event (or, for typing, the last `input`
// event) and the moment the awaited condition first holds after it, observed with a
// MutationObserver, so the latency is what the page itself saw, free of WebDriver round trips.
var cond = arguments[0];
var mode = arguments[1];
var prev = window.__synmon;
if (prev && prev.cleanup) { prev.cleanup(); }
var st = { t0: null, t1: null, start: null, lastInput: null, done: null };
window.__synmon = st;
function holds() { return __synmonHolds(cond); }
st.holds = holds;
function check() {
  if (st.t1 !== null || st.t0 === null) return;
  if (holds()) {
    st.t1 = performance.now();
    st.start = mode === 'last_input' && st.lastInput !== null ? st.lastInput : st.t0;
    if (st.done) st.done();
  }
}
st.check = check;
var obs = new MutationObserver(check);
obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
var onInput = function (e) { if (st.t0 === null) st.t0 = e.timeStamp; };
var onTyped = function (e) { st.lastInput = e.timeStamp; };
var types = ['pointerdown', 'mousedown', 'keydown', 'click'];
types.forEach(function (t) { document.addEventListener(t, onInput, true); });
document.addEventListener('input', onTyped, true);
// Style-only changes (CSS transitions) do not mutate the DOM: a slow fallback check.
var iv = setInterval(check, 10);
st.cleanup = function () {
  obs.disconnect();
  clearInterval(iv);
  types.forEach(function (t) { document.removeEventListener(t, onInput, true); });
  document.removeEventListener('input', onTyped, true);
};
return holds();
