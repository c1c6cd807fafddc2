// Shared by arm.js and wait.js (prepended to each): whether a wait condition holds now.
// cond: {selector, text, visible, gone}
function __synmonVisible(el) {
  if (!el.getClientRects().length) return false;
  var cs = getComputedStyle(el);
  return cs.visibility !== 'hidden' && cs.display !== 'none' && cs.opacity !== '0';
}
function __synmonHolds(cond) {
  var els = document.querySelectorAll(cond.selector);
  var found = false;
  for (var i = 0; i < els.length; i++) {
    var el = els[i];
    if (cond.visible && !__synmonVisible(el)) continue;
    if (cond.text && (el.textContent || '').indexOf(cond.text) < 0) continue;
    found = true;
    break;
  }
  return cond.gone ? !found : found;
}
