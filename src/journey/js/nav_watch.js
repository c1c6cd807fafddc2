// Body of a preload script (WebDriver BiDi script.addPreloadScript) that runs in every new
// document of the run's context before the page's own scripts. `watches` ([{key, cond}]) is
// defined before this text (cond.js too): the conditions of the run's actions that may navigate,
// installed once for the run (or, for a condition the run did not announce, once per action).
// Watches for each condition from the document's first moment, so an action that navigates is
// timed to the instant its condition held on the new document, even when that was before any
// WebDriver command could reach the page. Epoch-anchored (performance.timeOrigin +
// performance.now()) to be compared with the old document's start. Marks are kept by key; a
// mark on a document no action navigated to is never read (an action that stays on its
// document is timed by its own arming). Only the top document is the one an action navigates;
// frames are left alone. The watch stops when every condition has held, and after a minute in
// any case (a document where one never holds is not taxed for its whole life).
if (window === window.top) {
  var left = watches.slice();
  var obs = null;
  var iv = null;
  var stop = function () {
    if (obs) obs.disconnect();
    clearInterval(iv);
  };
  var mark = function () {
    if (!left.length) return;
    var now = performance.now();
    left = left.filter(function (w) {
      if (!__synmonHolds(w.cond)) return true;
      (window.__synmonNav = window.__synmonNav || {})[w.key] = performance.timeOrigin + now;
      return false;
    });
    if (!left.length) stop();
  };
  obs = new MutationObserver(mark);
  obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  iv = setInterval(mark, 10);
  document.addEventListener('DOMContentLoaded', mark);
  setTimeout(stop, 60000);
}
