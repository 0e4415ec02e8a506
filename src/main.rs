//! The `shim` binary: block signals, parse, run, exit. Everything else lives in the library.

use std::io::Write;

use shim::config::{self, Command};
use shim::{exit, log, persona, warn};

/// Runs from `.init_array`, before Rust's runtime initialisation and `main`: the kernel drops
/// a signal with no handler sent to PID 1, so the sooner signals are blocked (and so queued),
/// the smaller the window in which a `docker stop` right after start is lost.
// It lives here, not in the library with the other unsafe code, so that only the binary
// carries it: in the library it would also run in every test binary and block the test
// harness's signals.
// SAFETY: `link_section` is the unsafe part: the loader calls every pointer in .init_array as
// `extern "C" fn()`, and this is exactly one such function, which only sets the signal mask.
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static BLOCK_SIGNALS_AT_LOAD: extern "C" fn() = shim::block_signals_at_load;

fn main() {
    // First thing, and again after the loader-time call: this one can report a failure.
    let blocked = shim::block_signals();

    let args =
        persona::translate(std::env::args_os(), |name| std::env::var_os(name)).unwrap_or_else(|done| done.exit());
    let command = config::parse(args, |name| std::env::var_os(name));
    let config = match command {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => print_and_exit(&config::help()),
        Ok(Command::Version) => print_and_exit(&config::version()),
        Err(config::UsageError(what)) => {
            log::write_raw(format!("shim: {what}\n{}\n", config::USAGE).as_bytes());
            std::process::exit(exit::USAGE.0.into());
        }
    };
    log::set_level(config.verbosity);

    if let Err(e) = blocked {
        warn!("failed to block signals: {}", e.desc());
        std::process::exit(exit::FAILED.0.into());
    }
    if let Err(e) = shim::reset_dispositions() {
        warn!("failed to reset SIGPIPE and SIGCHLD to their defaults: {}", e.desc());
        std::process::exit(exit::FAILED.0.into());
    }

    // SAFETY: the binary's one thread, and no fd at or above 3 is opened before this.
    #[allow(unsafe_code)]
    let result = unsafe { shim::supervise(&config) };
    match result {
        Ok(code) => std::process::exit(code.0.into()),
        Err(e) => {
            warn!("{e}");
            std::process::exit(e.code.0.into());
        }
    }
}

/// `--help` and `--version` go to stdout. A closed stdout is no reason to fail, nor to panic.
fn print_and_exit(text: &str) -> ! {
    let _ = std::io::stdout().write_all(text.as_bytes());
    std::process::exit(0);
}
