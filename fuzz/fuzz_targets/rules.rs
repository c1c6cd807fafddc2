//! Fuzzes a rule file (with a valid one beside it) through `rules::load::load_files`.
//! Crashes on a panic, and on a rejection that does not say where (see `synmon::fuzz_entry`)
//! unless `SYNMON_FUZZ_PANICS_ONLY` is set: then only panics (and hangs) count, so a run can
//! look for them while a known rejection without a position is still open.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = synmon::fuzz_entry::rules(data)
        && std::env::var_os("SYNMON_FUZZ_PANICS_ONLY").is_none()
    {
        panic!("{e}");
    }
});
