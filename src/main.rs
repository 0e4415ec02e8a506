//! The `shim` binary: block signals, parse, run, exit. Everything else lives in the library.
//!
//! `no_main`: the C runtime calls the `main` below directly, and Rust's runtime set-up, which
//! PID 1 has no use for, never runs. On start-up that set-up cost shim a third of its
//! instructions and a dozen syscalls: it ignores SIGPIPE (which shim would then have to put
//! back, or the program would inherit it ignored), installs a signal stack and handlers to
//! report stack overflows, and copies the arguments into a global. What shim does need of it,
//! the arguments and `/dev/null` on a closed standard descriptor, `shim::args` and
//! `shim::open_standard_fds` do.
#![cfg_attr(not(test), no_main)]

use std::ffi::{OsStr, OsString};
use std::io::Write;

use shim::config::{self, Command};
use shim::{exit, log, persona, warn};

/// Start-up's allocations (a few hundred bytes for a usual command line) and those made on an
/// event fit here; with musl's malloc the first of them would set up a heap: four syscalls and
/// three fresh pages. Small, so that the statics after it are likely on a page that start-up
/// touches anyway. See `shim::Arena`.
#[global_allocator]
static ALLOCATOR: shim::Arena<1024> = shim::Arena::new();

/// Runs from `.init_array`, before the C runtime calls `main`: the kernel drops a signal with
/// no handler sent to PID 1, so the sooner signals are blocked (and so queued), the smaller the
/// window in which a `docker stop` right after start is lost.
// It lives here, not in the library with the other unsafe code, so that only the binary
// carries it: in the library it would also run in every test binary and block the test
// harness's signals.
// SAFETY: `link_section` is the unsafe part: the loader calls every pointer in .init_array as
// `extern "C" fn()`, and this is exactly one such function, which only sets the signal mask.
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static BLOCK_SIGNALS_AT_LOAD: extern "C" fn() = shim::block_signals_at_load;

/// The entry point the C runtime calls, with the arguments the kernel passed.
// SAFETY: `no_mangle` is the unsafe part: this is the program's one `main` symbol, with the C
// signature the runtime calls it by (the environment it reads from `environ`).
#[cfg(not(test))]
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // SAFETY: argc and argv are main's own, as the C runtime passes them, and nothing changes
    // them while they are read.
    let args = unsafe { shim::args(argc, argv) };
    run(args)
}

#[cfg_attr(test, allow(dead_code))]
fn run(args: shim::Args) -> ! {
    // What blocking at load found (blocked, or why not); reported once logging is set up.
    let blocked = shim::block_signals();
    let config = configure(args);
    log::set_level(config.verbosity);

    if let Err(e) = blocked {
        warn!("failed to block signals: {}", e.desc());
        std::process::exit(exit::FAILED.0.into());
    }
    if let Err(e) = shim::open_standard_fds() {
        warn!("failed to open /dev/null for a closed stdin, stdout or stderr: {}", e.desc());
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
        Ok(code) => shim::exit_process(code.0),
        Err(e) => {
            warn!("{e}");
            shim::exit_process(e.code.0);
        }
    }
}

/// The configuration the command line and the environment ask for, or the exit they ask for
/// instead (help, version, a usage error).
fn configure(args: shim::Args) -> config::Config {
    let env = shim::Environment::read();
    let var = |name: &str| env.var(name);
    // Called by its own name, as nearly always, shim lends the arguments to the parser as they
    // are; only a peer's command line is copied and translated first. Either way the parser
    // sees one type of iterator, so the binary holds one copy of it.
    let (mut own, translated, mut peers);
    let words: &mut dyn Iterator<Item = &OsStr> = match persona::Persona::from_name(args.name()) {
        persona::Persona::Shim => {
            // Each word as lent for as long as the parse, as a translated one is.
            own = args.map(|word| -> &OsStr { word });
            &mut own
        }
        _ => {
            translated = persona::translate(args.map(OsStr::to_os_string), var).unwrap_or_else(|done| done.exit());
            peers = translated.iter().map(OsString::as_os_str);
            &mut peers
        }
    };
    match config::parse(words, var) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => print_and_exit(&config::help()),
        Ok(Command::Version) => print_and_exit(&config::version()),
        Err(config::UsageError(what)) => {
            log::write_raw(format!("shim: {what}\n{}\n", config::USAGE).as_bytes());
            std::process::exit(exit::USAGE.0.into());
        }
    }
}

/// `--help` and `--version` go to stdout. A closed stdout is no reason to fail, nor to panic.
/// Flushed here: with `no_main`, nothing flushes stdout at exit.
fn print_and_exit(text: &str) -> ! {
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    std::process::exit(0);
}
