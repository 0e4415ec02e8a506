//! shim: a tiny PID 1 for containers.
//!
//! The layout is the design: [`config`] turns the command line and environment into a
//! [`config::Config`]; [`machine`] holds every decision as a pure state machine; [`sys`] is
//! the thin layer that calls the kernel; [`supervisor`] runs the loop that connects them; the
//! binary's `main` only wires parse, run and exit.

pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod log;
pub mod machine;
pub mod persona;
pub mod proctree;
pub mod signals;
pub mod supervisor;
pub mod sys;
