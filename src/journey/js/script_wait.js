// Shared by script_run.js and script_await.js: answers the script state `st` once it is done,
// or {pending: true} after `slice` ms.
function __synmonScriptAnswer(st, slice, callback) {
  function answer() {
    callback(st.done
      ? { done: true, value: st.value, error: st.error, ms: st.t1 - st.t0 }
      : { pending: true });
  }
  if (st.done) { answer(); return; }
  var timer = null;
  var w = function () { clearTimeout(timer); answer(); };
  timer = setTimeout(function () {
    var i = st.waiters.indexOf(w);
    if (i >= 0) st.waiters.splice(i, 1);
    answer();
  }, slice);
  st.waiters.push(w);
}
