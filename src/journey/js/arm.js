// Shared (prepended to the scripts that arm a step): arms in-page timing for one user action.
// cond: the awaited condition {selector, text, visible, gone}, or null for an action without
// `until` (it then ends when the page has handled the action's own event).
// start: the event the interaction starts at: 'click' (a click), 'keydown' (a key press),
// 'input' (typing: the LAST input event, the latency a user sees after they stop typing),
// 'change' (a select).
// token: names this arming. follow: the action may navigate; its start is then also sent
// out, epoch-anchored (performance.timeOrigin + performance.now()), through the channel the
// run's context installs in every document (window.__synmonSend), so that an action that
// navigates can be timed from its input event on the old document to the awaited state on
// the new one. Sent only when the document is about to be replaced (the Navigation API's
// `navigate` event for a new document, or `pagehide`): an action that stays on its document,
// most of them, sends nothing (each message is an event the runner wakes for).
// Records the start and the moment the condition first holds after it, observed with a
// MutationObserver, so the latency is what the page itself saw, free of WebDriver round trips.
function __synmonArm(cond, start, token, follow) {
  var prev = window.__synmon;
  if (prev && prev.cleanup) { prev.cleanup(); }
  var last = start === 'input';
  var st = { start: null, t1: null, ended: false, nocond: !cond, unsent: false, done: null, token: token };
  window.__synmon = st;
  function send() {
    if (typeof window.__synmonSend !== 'function') return;
    try {
      window.__synmonSend(JSON.stringify({ token: token, t0: performance.timeOrigin + st.start }));
    } catch (e) { /* the channel is best effort */ }
  }
  function holds() { return cond ? __synmonHolds(cond) : st.ended; }
  function check() {
    if (st.t1 !== null || st.start === null) return;
    // Read the clock before judging: the check itself (style for visibility) is not the page's.
    var now = performance.now();
    if (holds()) {
      st.t1 = now;
      if (st.done) st.done();
    }
  }
  st.holds = holds;
  st.check = check;
  // The start is the moment the page begins handling the event: this listener, on the window
  // in the capture phase, runs before any of the page's own. Not the event's timeStamp, which
  // includes the browser's input pipeline (for WebDriver, the driver's synthetic press and
  // release, several milliseconds that are not the page's).
  var onStart = function () {
    // Typing restarts the clock at each input until the condition has held (without a
    // condition: at each input, each one ending at its own handling).
    if (st.start === null || (last && (st.nocond || st.t1 === null))) {
      var began = performance.now();
      st.start = began;
      // Sent once the page has handled the event (onEnd), not here: the channel is a call
      // into the browser, and the page's own listeners must not wait for it.
      st.unsent = follow;
      if (!cond) {
        // A page listener that stops the event's propagation keeps onEnd from running: the
        // first task after the dispatch ends the action then.
        setTimeout(function () {
          if (st.start !== began || (st.t1 !== null && st.t1 >= began)) return;
          early();
          st.ended = true;
          st.t1 = performance.now();
          if (st.done) st.done();
        }, 0);
      }
    }
  };
  var flush = function () {
    if (st.unsent) { st.unsent = false; send(); }
  };
  // Where the Navigation API is missing, the start goes out as soon as the page has handled
  // the event, as it must before any navigation the page starts.
  var navigation = window.navigation && typeof window.navigation.addEventListener === 'function'
    ? window.navigation : null;
  var early = function () { if (!navigation) flush(); };
  var onNavigate = function (e) {
    if (!(e.destination && e.destination.sameDocument)) flush();
  };
  // Without a condition the step ends when the start event has run through the page's own
  // listeners: this one, on the window in the bubble phase, runs after theirs.
  var onEnd = function () {
    early();
    if (cond || st.start === null) return;
    st.ended = true;
    if (last) { st.t1 = performance.now(); if (st.done) st.done(); } else { check(); }
  };
  window.addEventListener(start, onStart, true);
  window.addEventListener(start, onEnd, false);
  // A page listener that stops the event's propagation keeps onEnd from running.
  window.addEventListener('pagehide', flush, true);
  if (navigation) navigation.addEventListener('navigate', onNavigate);
  var obs = null, iv = null;
  if (cond) {
    obs = new MutationObserver(check);
    obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    // Style-only changes (CSS transitions) do not mutate the DOM: a slow fallback check.
    iv = setInterval(check, 10);
  }
  st.cleanup = function () {
    if (obs) obs.disconnect();
    if (iv) clearInterval(iv);
    window.removeEventListener(start, onStart, true);
    window.removeEventListener(start, onEnd, false);
    window.removeEventListener('pagehide', flush, true);
    if (navigation) navigation.removeEventListener('navigate', onNavigate);
  };
  return cond ? __synmonHolds(cond) : false;
}
