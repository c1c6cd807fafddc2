// Resolves at the page's next change (a DOM mutation, an input or change event: a checkbox's
// state is a property, not an attribute), or after [slice_ms]: an assertion looks again then.
var slice = arguments[0];
var callback = arguments[arguments.length - 1];
var done = false;
var obs = new MutationObserver(finish);
function finish() {
  if (done) return;
  done = true;
  obs.disconnect();
  clearTimeout(timer);
  window.removeEventListener('input', finish, true);
  window.removeEventListener('change', finish, true);
  callback(true);
}
obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
window.addEventListener('input', finish, true);
window.addEventListener('change', finish, true);
window.addEventListener('pagehide', finish, { once: true });
var timer = setTimeout(finish, slice);
