//! Fuzzes a `POST /api/v1/silences` body through axum's `Json` parse and `NewSilence::into_silence`.
//! Crashes on a panic, and on a rejection that does not say where (see `synmon::fuzz_entry`)
//! unless `SYNMON_FUZZ_PANICS_ONLY` is set: then only panics (and hangs) count, so a run can
//! look for them while a known rejection without a position is still open.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = synmon::fuzz_entry::api_json(data)
        && std::env::var_os("SYNMON_FUZZ_PANICS_ONLY").is_none()
    {
        panic!("{e}");
    }
});
