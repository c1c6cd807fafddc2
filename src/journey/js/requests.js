// The document's requests from the performance timeline (the navigation, then every resource
// whose response has ended): [known, slice_ms, callback]. Answers as soon as there are more
// than `known`, else after `slice` ms. status: the response's (0 where the browser does not
// expose it: a failed request, a cross-origin one without Timing-Allow-Origin).
var known = arguments[0];
var slice = arguments[1];
var callback = arguments[arguments.length - 1];
function list() {
  return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
    .map(function (e) { return { url: e.name, status: e.responseStatus || 0 }; });
}
var now = list();
if (now.length > known) {
  callback(now);
} else {
  var done = false;
  var obs = new PerformanceObserver(function () { finish(); });
  var finish = function () {
    if (done) return;
    done = true;
    obs.disconnect();
    clearTimeout(timer);
    callback(list());
  };
  obs.observe({ type: 'resource' });
  window.addEventListener('pagehide', finish, { once: true });
  var timer = setTimeout(finish, slice);
}
