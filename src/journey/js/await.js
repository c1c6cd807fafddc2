// Waits (inside the page, without polling from outside) for the armed action's condition.
// arguments: [timeout_ms, callback]. Returns {start, end} in performance.now() time,
// {timeout: true, started: bool} when it did not hold in time, or {lost: true} when the page
// was replaced by a navigation (the caller then times from outside).
var timeout = arguments[0];
var callback = arguments[arguments.length - 1];
var st = window.__synmon;
if (!st) { callback({ lost: true }); return; }
var finish = function () {
  clearTimeout(timer);
  st.done = null;
  st.cleanup();
  if (st.t1 !== null) {
    callback({ start: st.start, end: st.t1 });
  } else {
    callback({ timeout: true, started: st.t0 !== null });
  }
};
var timer = setTimeout(finish, timeout);
st.done = finish;
// An input event may already have been seen and the condition met before this script ran.
if (st.t0 === null) {
  // No trusted input event arrived (e.g. a synthetic submit): time from now.
  st.t0 = performance.now();
}
st.check();
if (st.t1 !== null) finish();
