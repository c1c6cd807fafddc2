// Collects navigation timing, Web Vitals and the failed or slow requests of the current page:
// `callback` gets them (after one task: the buffered observers report then). `slow`: the
// duration in ms from which a request counts as slow. Shared by the evidence script and the
// await of a journey's last action (see await.js).
function __synmonEvidence(slow, callback) {
  var out = { url: location.href, lcp: null, cls: null, nav: null, requests: [] };
  var nav = performance.getEntriesByType('navigation')[0];
  if (nav) {
    out.nav = {
      ttfb: nav.responseStart, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
      status: nav.responseStatus || null
    };
  }
  performance.getEntriesByType('resource').forEach(function (r) {
    var status = r.responseStatus || 0;
    if (r.duration >= slow || status >= 400) {
      out.requests.push({ url: r.name, duration_ms: Math.round(r.duration * 10) / 10, status: status, type: r.initiatorType });
    }
  });
  try {
    var cls = 0;
    new PerformanceObserver(function (l) { l.getEntries().forEach(function (e) { if (!e.hadRecentInput) cls += e.value; }); })
      .observe({ type: 'layout-shift', buffered: true });
    new PerformanceObserver(function (l) { var e = l.getEntries(); if (e.length) out.lcp = e[e.length - 1].startTime; })
      .observe({ type: 'largest-contentful-paint', buffered: true });
    setTimeout(function () { out.cls = cls; callback(out); }, 0);
  } catch (e) {
    callback(out);
  }
}
