// The page side of steps sent over synmon's own DevTools socket (webdriver/direct.rs): what
// chromedriver does in the page for WebDriver's Execute Script and element commands, once per
// document. An expression: a function that installs (once) and returns the helper.
//
// Elements go back and forth as WebDriver element references ({KEY: id}), the same shape the
// page scripts and webdriver.rs read from chromedriver, so nothing above the socket changes.
(function () {
  var existing = window.__synmonDirect;
  if (existing) return existing;
  var KEY = 'element-6066-11e4-a52e-4f735466cecf';
  // The elements handed out, by id; the oldest are forgotten past a bound (a run's steps
  // hold a few at a time).
  var els = new Map();
  var next = 0;
  var LIMIT = 256;
  function isElement(v) {
    return v !== null && typeof v === 'object' && v.nodeType === 1 && typeof v.tagName === 'string';
  }
  function toRefs(v, depth) {
    if (isElement(v)) {
      var id = 'd' + (++next);
      els.set(id, v);
      if (els.size > LIMIT) els.delete(els.keys().next().value);
      var r = {};
      r[KEY] = id;
      return r;
    }
    if (v === null || typeof v !== 'object' || depth > 20) return v;
    if (Array.isArray(v) || v instanceof NodeList || v instanceof HTMLCollection) {
      return Array.prototype.map.call(v, function (x) { return toRefs(x, depth + 1); });
    }
    if (v instanceof Window) return null;
    var out = {};
    Object.keys(v).forEach(function (k) { out[k] = toRefs(v[k], depth + 1); });
    return out;
  }
  function fail(error, message) {
    var e = new Error(error + ': ' + message);
    e.webdriver = error;
    throw e;
  }
  function get(id) {
    var el = els.get(id);
    if (!el || !el.isConnected) fail('stale element reference', 'stale element not found in the current frame');
    return el;
  }
  function fromRefs(v, depth) {
    if (v === null || typeof v !== 'object' || depth > 20) return v;
    if (typeof v[KEY] === 'string') return get(v[KEY]);
    if (Array.isArray(v)) return v.map(function (x) { return fromRefs(x, depth + 1); });
    var out = {};
    Object.keys(v).forEach(function (k) { out[k] = fromRefs(v[k], depth + 1); });
    return out;
  }
  // What the page answers: {ok: value} or {error, message}; a thrown error is the script's.
  function answer(f) {
    try {
      return { ok: toRefs(f(), 0) };
    } catch (e) {
      if (e && e.webdriver) return { error: e.webdriver, message: e.message };
      return { error: 'javascript error', message: String(e && e.stack || e) };
    }
  }
  function describe(el) {
    var s = '<' + el.tagName.toLowerCase();
    ['id', 'class', 'data-test'].forEach(function (a) {
      var v = el.getAttribute(a);
      if (v) s += ' ' + a + '="' + v + '"';
    });
    return s + '>';
  }
  // The in-view centre of the element's first box (WebDriver's "in-view center point").
  function centre(el) {
    var r = el.getClientRects()[0];
    if (!r) return null;
    var w = document.documentElement.clientWidth || window.innerWidth;
    var h = document.documentElement.clientHeight || window.innerHeight;
    var left = Math.max(0, r.left), right = Math.min(w, r.right);
    var top = Math.max(0, r.top), bottom = Math.min(h, r.bottom);
    if (right <= left || bottom <= top) return null;
    return { x: Math.floor((left + right) / 2), y: Math.floor((top + bottom) / 2) };
  }
  var D = {
    // WebDriver's Execute Script (`async`: Execute Async Script, the callback last).
    run: function (fn, args, async) {
      var a;
      try {
        a = fromRefs(Array.prototype.slice.call(args), 0);
      } catch (e) {
        return { error: e.webdriver || 'javascript error', message: e.message };
      }
      if (!async) {
        var v;
        try {
          v = fn.apply(window, a);
        } catch (e) {
          return { error: 'javascript error', message: String(e && e.stack || e) };
        }
        // Execute Script awaits a promise the script returns.
        if (v && typeof v.then === 'function') {
          return Promise.resolve(v).then(function (x) { return answer(function () { return x; }); },
            function (e) { return { error: 'javascript error', message: String(e && e.stack || e) }; });
        }
        return answer(function () { return v; });
      }
      return new Promise(function (resolve) {
        a.push(function (v) { resolve(answer(function () { return v; })); });
        try {
          fn.apply(window, a);
        } catch (e) {
          resolve({ error: 'javascript error', message: String(e && e.stack || e) });
        }
      });
    },
    // Element Click's checks: scrolled into view, the click would reach it (not another
    // element on top). Gives the point to press.
    point: function (id) {
      return answer(function () {
        var el = get(id);
        if (!el.getClientRects().length) fail('element not interactable', 'element has no size or is not rendered');
        var c = centre(el);
        if (!c) {
          el.scrollIntoView({ block: 'end', inline: 'nearest' });
          c = centre(el);
        }
        if (!c) fail('element not interactable', 'element could not be scrolled into view');
        var root = el.getRootNode();
        var hit = (root.elementFromPoint ? root : document).elementFromPoint(c.x, c.y);
        if (hit && hit !== el && !el.contains(hit)) {
          fail('element click intercepted', 'Element ' + describe(el) + ' is not clickable at point (' + c.x + ', ' + c.y + '). Other element would receive the click: ' + describe(hit));
        }
        return c;
      });
    },
    // Element Send Keys' focusing: the element gets the focus, the caret goes to the end.
    focus: function (id) {
      return answer(function () {
        var el = get(id);
        if (document.activeElement !== el) el.focus();
        if (document.activeElement !== el && !el.contains(document.activeElement)) {
          fail('element not interactable', 'element ' + describe(el) + ' cannot take the focus');
        }
        try {
          if (typeof el.value === 'string' && el.setSelectionRange) el.setSelectionRange(el.value.length, el.value.length);
        } catch (e) { /* input types without a caret */ }
        return true;
      });
    },
    // Element Clear: an editable element's value emptied, as the user-visible change it is.
    clear: function (id) {
      return answer(function () {
        var el = get(id);
        var editable = el.isContentEditable || ('value' in el && !el.readOnly && !el.disabled);
        if (!editable) fail('invalid element state', 'element ' + describe(el) + ' is not editable');
        el.focus();
        if (el.isContentEditable) el.innerHTML = ''; else el.value = '';
        el.dispatchEvent(new Event('input', { bubbles: true }));
        el.dispatchEvent(new Event('change', { bubbles: true }));
        el.blur();
        return null;
      });
    }
  };
  Object.defineProperty(window, '__synmonDirect', { value: D });
  return D;
})()
