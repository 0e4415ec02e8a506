//! shim: a tiny PID 1 for containers.
//!
//! The layout is the design: [`config`] turns the command line and environment into a
//! [`config::Config`], and [`user`] resolves its `--user` against the image's account files;
//! [`machine`] holds every decision as a pure state machine; `sys` is the thin layer that
//! calls the kernel; [`health`] is the `--health` endpoint (its socket calls in
//! `health::socket`); `supervisor` runs the loop that connects them; the binary's `main` only
//! wires parse, run and exit, taking what the process was started with (arguments,
//! environment, standard descriptors) from `sys::start`. docs/contract.md is what it all
//! promises.
//!
//! Where each kind of change goes:
//! - a new option: one row of `config::OPTIONS` (name, variable, default, help line, how its
//!   value applies); `--help` and the environment follow from it;
//! - a new decision (when to send what, when to exit): [`machine`], with its unit tests there
//!   and a property in tests/properties.rs if it is an invariant;
//! - a peer's command line (shim called as tini or dumb-init): `persona`, which turns it into
//!   shim's own;
//! - a new syscall: `sys` (a socket call of the health endpoint's: `health::socket`), as a
//!   safe function that reports what the kernel said;
//! - new wiring between the two (a new event or action): `supervisor`;
//! - a new promise: docs/contract.md first, then a test in tests/ with the real binary.

pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod log;
pub mod machine;
pub mod persona;
pub mod proctree;
pub mod signals;
mod supervisor;
mod sys;
pub mod user;

pub use sys::arena::Arena;
pub use sys::start::{args, exit_process, open_standard_fds, Args, Environment};
pub use sys::{block_signals, block_signals_at_load, reset_dispositions};

/// Run `config.program` under supervision until everything it started is gone, and return
/// the code to exit with.
///
/// # Safety
/// The process must be single-threaded, and own no file descriptor at or above 3 that it will
/// use again: shim forks, and closes every fd it inherited so as not to keep the program's
/// sockets alive.
#[allow(unsafe_code)]
pub unsafe fn supervise(config: &config::Config) -> Result<exit::ExitCode, error::Error> {
    supervisor::run(config)
}
