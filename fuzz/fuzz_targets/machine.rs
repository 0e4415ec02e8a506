//! Any policy and event stream: the state machine keeps its invariants, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shim::fuzzing::run_machine(data);
});
