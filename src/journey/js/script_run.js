// Runs a journey's `script` step in the page: [js, args, async, slice_ms, callback].
// `js` is a function body with the parameters `args` (the step's list) and `done` (for
// `async: true`: called with the result). A sync body's `return` is the result (a returned
// Promise is awaited). The outcome is kept on window.__synmonScript, so a script that outlives
// one WebDriver call (longer than `slice`) is awaited again by script_wait.js.
// Answers {done: true, value, error: {message, line} | null, ms} or {pending: true}.
var js = arguments[0];
var args = arguments[1];
var isAsync = arguments[2];
var slice = arguments[3];
var callback = arguments[arguments.length - 1];
var st = { done: false, t0: performance.now(), t1: null, value: null, error: null, waiters: [] };
window.__synmonScript = st;
// The line in the step's `js`: `new Function` puts the body after two header lines, and V8
// names its frames `eval at ... <anonymous>:LINE:COL`.
function lineOf(e) {
  var m = /<anonymous>:(\d+):(\d+)\)/.exec(String((e && e.stack) || ''));
  return m ? Math.max(1, Number(m[1]) - 2) : null;
}
function settle(value, error) {
  if (st.done) return;
  st.t1 = performance.now();
  st.done = true;
  window.removeEventListener('error', onError);
  window.removeEventListener('unhandledrejection', onRejection);
  if (error) {
    st.error = error;
  } else {
    try {
      st.value = value === undefined ? null : JSON.parse(JSON.stringify(value));
    } catch (e) {
      st.error = { message: 'the result is not JSON: ' + e.message, line: null };
    }
    if (st.value === undefined) st.value = null;
  }
  st.waiters.splice(0).forEach(function (w) { w(); });
}
function fail(e) {
  var msg = (e && e.message !== undefined) ? String(e.message) : String(e);
  var name = (e && e.name) ? e.name + ': ' : '';
  settle(null, { message: name + msg, line: lineOf(e) });
}
// An exception thrown later (in a timer or a promise of an async script) ends it too.
function onError(ev) { fail(ev.error || ev.message); }
function onRejection(ev) { fail(ev.reason); }
window.addEventListener('error', onError);
window.addEventListener('unhandledrejection', onRejection);
try {
  var f = new Function('args', 'done', js);
  if (isAsync) {
    f.call(window, args, function (v) { settle(v, null); });
  } else {
    var r = f.call(window, args, null);
    if (r && typeof r.then === 'function') {
      r.then(function (v) { settle(v, null); }, fail);
    } else {
      settle(r, null);
    }
  }
} catch (e) {
  fail(e);
}
__synmonScriptAnswer(st, slice, callback);
