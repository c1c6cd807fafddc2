// Runs on the document an action navigated to. arguments: [token | null, slice_ms, final, cb].
// With a token: waits for the preload watcher's mark of that token (the awaited condition held
// at `end`, epoch ms). Without: waits for the document's load event to end.
// Returns {end, origin, nav} (nav: the navigation's own timing, ms from its start), {pending}
// when the slice ended first and more follow, {timeout} when the final slice did.
__synmonNavAwait(arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]);
