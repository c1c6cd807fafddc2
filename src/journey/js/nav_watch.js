// Body of a preload script (WebDriver BiDi script.addPreloadScript) that runs in every new
// document of the run's context before the page's own scripts, while an action that may
// navigate is in flight. `cond` and `token` are defined before this text (cond.js too).
// Watches for the awaited condition from the document's first moment, so an action that
// navigates is timed to the instant the condition held on the new document, even when that
// was before any WebDriver command could reach the page. Epoch-anchored
// (performance.timeOrigin + performance.now()) to be compared with the old document's start.
// Only the top document is the one an action navigates; frames are left alone. The watch
// stops when the condition holds, and after a minute in any case (a document where it never
// holds is not taxed for its whole life). Marks are kept by token.
if (window === window.top) {
  var marked = false;
  var obs = null;
  var iv = null;
  var stop = function () {
    if (obs) obs.disconnect();
    clearInterval(iv);
  };
  var mark = function () {
    if (marked) return;
    var now = performance.now();
    if (!__synmonHolds(cond)) return;
    marked = true;
    (window.__synmonNav = window.__synmonNav || {})[token] = performance.timeOrigin + now;
    stop();
  };
  obs = new MutationObserver(mark);
  obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  iv = setInterval(mark, 10);
  document.addEventListener('DOMContentLoaded', mark);
  setTimeout(stop, 60000);
}
