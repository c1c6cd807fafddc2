// What `assert` checks on the elements a selector finds: [selector, attribute | null].
// Returns {count, attr, enabled, checked, visible} (the last four of the first element; visible:
// whether any of them is shown).
var els = document.querySelectorAll(arguments[0]);
var attr = arguments[1];
var el = els[0] || null;
var visible = false;
for (var i = 0; i < els.length; i++) { if (__synmonVisible(els[i])) { visible = true; break; } }
return {
  count: els.length,
  attr: el && attr ? el.getAttribute(attr) : null,
  enabled: el ? !el.matches(':disabled') : null,
  checked: el ? el.matches(':checked') : null,
  visible: visible
};
