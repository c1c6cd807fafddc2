// Arms in-page timing for an action that needs no element found first (a key press on the
// focused element). arguments: [cond | null, start, token, follow]; returns whether cond already held.
return __synmonArm(arguments[0], arguments[1], arguments[2], arguments[3]);
