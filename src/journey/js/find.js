// Shared (prepended to the scripts that find an action's element): the first visible element
// `selector` matches, and whether a fill may skip clearing it.
function __synmonFind(selector) {
  var els = document.querySelectorAll(selector);
  for (var i = 0; i < els.length; i++) { if (__synmonVisible(els[i])) return els[i]; }
  return null;
}
// An enabled, writable text field or editable element with nothing in it.
function __synmonBlank(el) {
  if (el.disabled || el.readOnly) return false;
  // A number field holding text it cannot parse reads '' too (badInput): that one is cleared.
  if (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') {
    return el.value === '' && !(el.validity && el.validity.badInput);
  }
  return el.isContentEditable === true && el.innerHTML === '';
}
// Arms in-page timing for the action on `el` when asked, and says what the runner needs to
// know of it: {ok: true, el, pre, blank}.
function __synmonFound(el, arm) {
  var pre = arm ? __synmonArm(arm.cond, arm.start, arm.token, arm.follow) : false;
  return { ok: true, el: el, pre: pre, blank: __synmonBlank(el) };
}
