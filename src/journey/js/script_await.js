// Awaits the script step started by script_run.js: [slice_ms, callback]. {lost: true} when the
// document that ran it is gone (the script navigated away).
var slice = arguments[0];
var callback = arguments[arguments.length - 1];
var st = window.__synmonScript;
if (!st) { callback({ lost: true }); } else { __synmonScriptAnswer(st, slice, callback); }
