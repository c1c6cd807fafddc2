// Waits (inside the page, without polling from outside) for the armed action's condition.
// arguments: [slice_ms, final, next | null, evidence_slow_ms | null, follow | null,
// wait | null, callback]. Returns {start, end} in performance.now()
// time, and, when `next` ({selector, arm}) names the element the journey's next action targets,
// `next`: that element found and its action armed ({ok, el, pre, blank}, as ready.js returns),
// or null when no visible one is there yet (the next action then looks for it itself). The
// lookup comes after the end was read: it is not part of this action's time, and the next
// action is timed from its own start event as always. One command less per step;
// (window.__synmonEnded keeps {start, end} for an answer that failed on its element);
// with evidence_slow_ms (the journey's last action), `evidence` too: what evidence.js collects,
// read once the condition held, instead of in a command of its own after the run;
// {pending: true} when this slice ended first and more slices follow (the state stays armed);
// {timeout: true, started} when the final slice ended first; {lost: true} when the page was
// replaced by a navigation (the caller then follows the action into the new document). Waiting
// in slices keeps every script call short, so a callback lost to a navigation is noticed
// within one slice.
// follow ({key}: what the action's new document is awaited by, as nav_await.js takes it): when
// this already is that document (a click's command returns once the page it loaded has loaded,
// so the await often runs there), the new document is awaited in this same call: the answer is
// nav_await.js's with `navigated: true` (one command less per navigating action).
// wait (a condition: the journey's next step is a `wait_for` of it): once the end is known,
// `waited` says whether it holds, and a `wait_for` that holds needs no command of its own.
var slice = arguments[0];
var last = arguments[1];
var next = arguments[2];
var evidence = arguments[3];
var follow = arguments.length > 5 ? arguments[4] : null;
var wait = arguments.length > 6 ? arguments[5] : null;
var callback = arguments[arguments.length - 1];
var st = window.__synmon;
if (!st) {
  // No armed state: a new document (the armed one is gone).
  if (!follow) { callback({ lost: true }); return; }
  __synmonNavAwait(follow.key, slice, last, function (v) {
    v.navigated = true;
    if (v.end === undefined) { callback(v); return; }
    if (wait) v.waited = __synmonHolds(wait);
    if (evidence !== null) {
      __synmonEvidence(evidence, function (ev) { v.evidence = ev; callback(v); });
    } else {
      callback(v);
    }
  });
  return;
}
var timer = null;
var answered = false;
var answer = function (v) { if (!answered) { answered = true; callback(v); } };
// A navigation replaces this document: say so before it goes (a callback lost with the
// document would hold the WebDriver command until its script timeout).
// (Once the condition held, the answer is that, with or without the evidence still collected.)
var held = null;
window.addEventListener('pagehide', function () {
  clearTimeout(timer);
  st.done = null;
  answer(held || { lost: true });
}, { once: true });
var finish = function (sliceOver) {
  clearTimeout(timer);
  st.done = null;
  if (st.t1 !== null) {
    st.cleanup();
    var r = { start: st.start, end: st.t1 };
    // The answer without the element, for the runner to ask again: the element goes back as a
    // reference only after this script's turn, and a page that replaces it in between (a
    // framework's second render, in a microtask) makes the whole answer fail.
    window.__synmonEnded = { start: st.start, end: st.t1 };
    if (next) {
      var el = __synmonFind(next.selector);
      r.next = el ? __synmonFound(el, next.arm) : null;
    }
    if (wait) r.waited = __synmonHolds(wait);
    held = r;
    if (evidence !== null) {
      __synmonEvidence(evidence, function (ev) { r.evidence = ev; answer(r); });
    } else {
      answer(r);
    }
  } else if (sliceOver && !last) {
    answer({ pending: true });
  } else {
    st.cleanup();
    answer({ timeout: true, started: st.start !== null });
  }
};
timer = setTimeout(function () { finish(true); }, slice);
st.done = function () { finish(false); };
if (st.start === null) {
  // No input event arrived (e.g. a synthetic submit): time from now; an action without a
  // condition has then nothing more to wait for.
  st.start = performance.now();
  if (st.nocond) st.ended = true;
}
st.check();
if (st.t1 !== null) finish(false);
