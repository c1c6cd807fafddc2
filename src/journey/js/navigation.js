// The current document's navigation, read right after a `goto`: its HTTP status and its own
// timing (ms from its start), or null when the browser does not know it. arguments: [next |
// null]: as in await.js, the element the journey's next action targets, found and armed in the
// same call when it is already there (`next` in the answer; not for a 5xx, which fails the
// `goto`).
var n = performance.getEntriesByType('navigation')[0];
if (!n) return null;
var r = {
  status: n.responseStatus || null,
  redirect_ms: n.redirectEnd - n.redirectStart,
  ttfb_ms: n.responseStart,
  dom_content_loaded_ms: n.domContentLoadedEventEnd,
  load_ms: n.loadEventEnd
};
var next = arguments[0];
if (next && !(r.status >= 500)) {
  var el = __synmonFind(next.selector);
  r.next = el ? __synmonFound(el, next.arm) : null;
}
return r;
