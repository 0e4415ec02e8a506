//! Any command line and environment: parsing may refuse it, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shim::fuzzing::parse_command_line(data);
});
