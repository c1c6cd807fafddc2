//! Fuzzes a journey file (beside a shared step file) through `journey::load_file`.
//! Crashes on a panic, and on a rejection that does not say where (see `synmon::fuzz_entry`)
//! unless `SYNMON_FUZZ_PANICS_ONLY` is set: then only panics (and hangs) count, so a run can
//! look for them while a known rejection without a position is still open.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = synmon::fuzz_entry::journey(data)
        && std::env::var_os("SYNMON_FUZZ_PANICS_ONLY").is_none()
    {
        panic!("{e}");
    }
});
