// Waits (inside the page, without polling from outside) for the armed action's condition.
// arguments: [slice_ms, final, callback]. Returns {start, end} in performance.now() time;
// {pending: true} when this slice ended first and more slices follow (the state stays armed);
// {timeout: true, started} when the final slice ended first; {lost: true} when the page was
// replaced by a navigation (the caller then times from outside). Waiting in slices keeps every
// script call short, so a callback lost to a navigation is noticed within one slice.
var slice = arguments[0];
var last = arguments[1];
var callback = arguments[arguments.length - 1];
var st = window.__synmon;
if (!st) { callback({ lost: true }); return; }
var timer = null;
var finish = function (sliceOver) {
  clearTimeout(timer);
  st.done = null;
  if (st.t1 !== null) {
    st.cleanup();
    callback({ start: st.start, end: st.t1 });
  } else if (sliceOver && !last) {
    callback({ pending: true });
  } else {
    st.cleanup();
    callback({ timeout: true, started: st.t0 !== null });
  }
};
timer = setTimeout(function () { finish(true); }, slice);
st.done = function () { finish(false); };
// An input event may already have been seen and the condition met before this script ran.
if (st.t0 === null) {
  // No trusted input event arrived (e.g. a synthetic submit): time from now.
  st.t0 = performance.now();
}
st.check();
if (st.t1 !== null) finish(false);
