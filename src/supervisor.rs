//! One supervision from spawn to exit: the loop that waits in the kernel for a signal or the
//! next deadline (and, with `--health`, a health check), turns what the kernel says into
//! [`Event`]s, feeds them to the [`Machine`], carries out its [`Action`]s through [`sys`],
//! and hands the health endpoint the machine's [`Health`]. It decides nothing itself: it
//! gathers facts, dispatches, and writes the log lines that say what was done.

use std::ffi::{OsStr, OsString};
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::unistd::Pid;

use crate::config::Config;
use crate::duration;
use crate::error::Error;
use crate::exit::{ExitCode, Status};
use crate::health::{Health, Server};
use crate::log::{self, Words};
use crate::machine::{Action, Dropped, Event, Holder, Left, Machine, Now, Policy, Target, Tty, Why};
use crate::signals::{Origin, Sig, SIGCHLD, SIGCONT, SIGKILL};
use crate::sys::clock::Clock;
use crate::sys::{self, Known, Remaining, Sent, Wait};
use crate::user::{self, Identity, UserSpec};
use crate::{info, warn};

/// What the loop knows besides the machine's state.
struct Run<'a> {
    config: &'a Config,
    child: Pid,
    pid1: bool,
    clock: Clock,
    /// When the program started, by `clock`; only read for a log line.
    spawned: Duration,
    /// The pre-stop hook while it runs.
    hook: Option<Pid>,
    /// The key watch while the main child runs, if the program was given the terminal.
    watch: Option<Pid>,
    /// Who the program and the hook run as (`--user`), resolved before the first fork.
    user: Option<Identity>,
}

/// The health endpoint, and what the loop's wait needs for it.
struct Endpoint {
    server: Server,
    /// Readable while a signal is pending: one wait covers signals and sockets.
    signals: OwnedFd,
    /// The answer last logged.
    told: Health,
}

impl Endpoint {
    /// Listen on `--health`'s address before anything starts, so that an address that cannot
    /// be had keeps the program from starting.
    fn open(config: &Config) -> Result<Option<Endpoint>, Error> {
        let Some(listen) = &config.health else { return Ok(None) };
        let server =
            Server::open(listen.at, config.health_probe, sys::above_stdio).map_err(|e| Error::health(listen, e))?;
        let signals = sys::signal_fd()
            .and_then(sys::above_stdio)
            .map_err(|e| Error::setup("create a signalfd for the health endpoint", e))?;
        Ok(Some(Endpoint { server, signals, told: Health::Serving }))
    }

    fn fds(&self) -> [i32; 2] {
        [self.server.fd(), self.signals.as_raw_fd()]
    }
}

/// Sleep in the kernel until a signal, the machine's next deadline `due`, or (with the
/// endpoint) a health check's socket; take the signal if there is one.
/// The clock is read only when there is a deadline or an endpoint to time.
fn wait(endpoint: Option<&mut Endpoint>, due: Option<Duration>, clock: &Clock) -> Result<Wait, nix::errno::Errno> {
    let Some(e) = endpoint else { return sys::wait_signal(due.map(|due| due.saturating_sub(clock.elapsed()))) };
    if e.server.wait(&e.signals, due, clock.elapsed())?.signal {
        sys::wait_signal(Some(Duration::ZERO))
    } else {
        Ok(Wait::Nothing)
    }
}

/// Run `config.program` under supervision and return the code shim should exit with.
pub fn run(config: &Config) -> Result<ExitCode, Error> {
    let clock = Clock::start();
    // First, so that a name the image does not know stops everything before it starts.
    let user = config.user.as_ref().map(identity).transpose()?;
    let mut endpoint = Endpoint::open(config)?;
    let pid1 = sys::pid() == 1;
    if !pid1 {
        if let Err(e) = sys::become_subreaper() {
            warn!("could not become a child subreaper ({}): orphans will not be reaped or stopped by shim", e.desc());
        }
    }
    if let Some(sig) = config.pdeathsig {
        sys::set_parent_death_signal(sig).map_err(|e| Error::setup("set the parent-death signal", e))?;
    }
    let tty = if sys::stdin_is_terminal() { Tty::Present } else { Tty::Absent };
    let foreground = tty == Tty::Present && sys::shim_holds_terminal();
    let child = match sys::spawn(&config.program, foreground, user.as_ref()) {
        Ok(pid) => pid,
        Err(e) => {
            if foreground {
                if let Err(errno) = sys::take_terminal_back() {
                    warn!("could not take the terminal back: {}", errno.desc());
                }
            }
            return Err(Error::spawn(&config.program[0], e));
        }
    };
    // The program's group holds the terminal now, so the keys' signals go there, not here.
    let watch = if foreground {
        sys::spawn_key_watch(child, &endpoint.as_ref().map(Endpoint::fds).unwrap_or([-1; 2]))
            .map_err(|e| warn!("could not start the key watch ({}): a second Ctrl-C will not force the stop", e.desc()))
            .ok()
    } else {
        None
    };
    // Only a log line reads `spawned`: unless it is shown, no second clock reading.
    let spawned = if log::enabled(1) { clock.elapsed() } else { Duration::ZERO };
    info!(
        1,
        "started {} as pid {child} in process group {child}{}{}{}",
        Words(&config.program),
        if pid1 { ", as PID 1" } else { ", as subreaper" },
        if foreground { ", in the terminal's foreground" } else { "" },
        user.as_ref().map(|u| format!(", as uid {} gid {}", u.uid, u.gid)).unwrap_or_default(),
    );
    let mut run = Run { config, child, pid1, clock, spawned, hook: None, watch, user };

    if let (Some(e), Some(listen)) = (&endpoint, &config.health) {
        let port = e.server.port().unwrap_or(listen.at.port());
        info!(1, "answering health checks on {}", listen.shown(port));
    }

    // The program has its own copies of inherited fds and of the working directory.
    let keep = endpoint.as_ref().map(Endpoint::fds).unwrap_or([-1; 2]);
    if let Err(e) = sys::close_inherited_fds(&keep) {
        warn!("could not close inherited file descriptors: {}", e.desc());
    }
    if let Err(e) = sys::leave_working_directory() {
        warn!("could not move to /: {}", e.desc());
    }

    let mut machine = Machine::new(Policy::from_config(config, pid1, tty));
    loop {
        let mut woken =
            wait(endpoint.as_mut(), machine.deadline(), &run.clock).map_err(|e| Error::setup("wait for signals", e))?;
        loop {
            let signal = matches!(woken, Wait::Signal(_));
            if let ControlFlow::Break(code) = run.on_wake(&mut machine, woken) {
                return Ok(code);
            }
            // With sockets to serve, every pending signal is taken before any of them: a
            // signal waits for one bounded round of socket work at most.
            if endpoint.is_none() || !signal {
                break;
            }
            woken = sys::wait_signal(Some(Duration::ZERO)).map_err(|e| Error::setup("wait for signals", e))?;
            if matches!(woken, Wait::Nothing) {
                break;
            }
        }
        // Signals first, then health checks: one that came with a stop signal is answered
        // as the machine stands after it.
        if let Some(e) = endpoint.as_mut() {
            let health = machine.health();
            if health != e.told {
                info!(1, "health checks are answered 503 draining from now");
                e.told = health;
            }
            e.server.serve(health, run.clock.elapsed());
        }
    }
}

/// `--user` resolved against the image's account files.
fn identity(spec: &UserSpec) -> Result<Identity, Error> {
    let read = |path| sys::read_if_present(path).map_err(|e| Error::user(spec, &format!("{path}: {}", e.desc())));
    let (passwd, group) = (read(user::PASSWD)?, read(user::GROUP)?);
    let files = user::Files { passwd: passwd.as_deref(), group: group.as_deref() };
    user::resolve(spec, files, sys::gid()).map_err(|why| Error::user(spec, &why))
}

/// The clock, read for an event only if the machine asks, and then once.
struct Reading<'a> {
    clock: &'a Clock,
    at: Option<Duration>,
}

impl Now for Reading<'_> {
    fn now(&mut self) -> Duration {
        *self.at.get_or_insert_with(|| self.clock.elapsed())
    }
}

/// What carrying out an action leads to.
enum Done {
    Continue,
    /// An event the action itself caused (a hook that could not start has, in effect, exited).
    Then(Event),
    Exit(ExitCode),
}

impl Run<'_> {
    /// Feed the machine what one wake-up stands for, then a tick: under a steady stream of
    /// signals the wait never times out, and escalation must not starve. Breaks with the
    /// code to exit with, once the machine has decided it.
    fn on_wake(&mut self, machine: &mut Machine, woken: Wait) -> ControlFlow<ExitCode> {
        match woken {
            Wait::Nothing => {}
            Wait::Signal(r) if r.sig == SIGCHLD => {
                if let Some((hook_exited, reaped)) = self.reap() {
                    if hook_exited {
                        self.feed(machine, Event::HookExited)?;
                    }
                    self.feed(machine, reaped)?;
                }
            }
            Wait::Signal(r) => {
                let origin = Origin::of(r, sys::pid(), self.watch.map(Pid::as_raw));
                info!(3, "received {} {origin}", r.sig);
                let event = if r.sig == SIGCONT {
                    let holder = if sys::shim_holds_terminal() { Holder::Shim } else { Holder::Other };
                    Event::Continued { origin, holder }
                } else {
                    Event::Signal { sig: r.sig, origin }
                };
                self.feed(machine, event)?;
            }
        }
        // With no deadline a tick has nothing to do: not fed, so a forwarded signal costs no
        // clock reading for it.
        if machine.deadline().is_none() {
            return ControlFlow::Continue(());
        }
        self.feed(machine, Event::Tick)
    }

    /// Feed one event and carry out what the machine answers, and what that leads to.
    fn feed(&mut self, machine: &mut Machine, event: Event) -> ControlFlow<ExitCode> {
        let mut reading = Reading { clock: &self.clock, at: None };
        let actions = machine.handle(event, &mut reading);
        let at = reading.at;
        for action in actions {
            match self.carry_out(action, at, machine.deadline()) {
                Done::Continue => {}
                // Never deeper than one: a hook that could not start is the only source, and
                // its exit starts nothing.
                Done::Then(next) => self.feed(machine, next)?,
                Done::Exit(code) => return ControlFlow::Break(code),
            }
        }
        ControlFlow::Continue(())
    }

    /// One full drain of `waitpid`, logged: whether the hook exited in it, and the event.
    fn reap(&mut self) -> Option<(bool, Event)> {
        let mut drained = match sys::drain(self.known()) {
            Ok(d) => d,
            Err(e) => {
                warn!("waiting for children failed: {}", e.desc());
                return None;
            }
        };
        if drained.watch.is_some() {
            self.watch = None;
        }
        if drained.main.is_some() {
            if let Some(watch) = self.watch.take() {
                sys::end_key_watch(watch);
                // What is left is counted again without it.
                if let Ok(more) = sys::drain(self.known()) {
                    drained.hook = drained.hook.or(more.hook);
                    drained.others += more.others;
                    drained.left = more.left;
                }
            }
        }
        if let Some(status) = drained.hook {
            self.hook = None;
            match status {
                Status::Exited(0) => info!(1, "pre-stop hook finished"),
                Status::Exited(code) => warn!("pre-stop hook exited with {code}; stopping anyway"),
                Status::Signaled(sig) => warn!("pre-stop hook was killed by {sig}; stopping anyway"),
            }
        }
        if let Some(status) = drained.main {
            // Inside the log line, so it is only worked out when the line is written.
            let after = || duration::display(self.clock.elapsed().saturating_sub(self.spawned));
            match status {
                Status::Exited(code) => info!(1, "main child {} exited with {code} after {}", self.child, after()),
                Status::Signaled(sig) => info!(1, "main child {} was killed by {sig} after {}", self.child, after()),
            }
        }
        if drained.others > 0 {
            info!(2, "reaped {} orphaned process(es)", drained.others);
        }
        let left = match drained.left {
            Remaining::Some => Left::Some,
            Remaining::None => Left::Nothing,
        };
        Some((drained.hook.is_some(), Event::Reaped { main: drained.main, left, main_stopped: drained.main_stopped }))
    }

    /// Do what the machine decided, with `deadline` the next one it has set. `at` is the time
    /// the machine went by, if it read one; only a log line needs it otherwise.
    fn carry_out(&mut self, action: Action, at: Option<Duration>, deadline: Option<Duration>) -> Done {
        let until = |due: Option<Duration>| {
            let now = at.unwrap_or_else(|| self.clock.elapsed());
            duration::display(due.unwrap_or(now).saturating_sub(now))
        };
        match action {
            Action::Send { sig, to, why } => {
                let name = self.name(to);
                match why {
                    Why::Forward => info!(1, "{why} {sig} to {name}"),
                    Why::Wake => info!(2, "{why} {sig} to {name}"),
                    Why::StopBegins => {
                        info!(1, "{why} {sig} to {name}, SIGKILL to everything left in {}", until(deadline))
                    }
                    Why::Leftovers => info!(1, "{why} {sig} to them, SIGKILL in {}", until(deadline)),
                    Why::Escalate => info!(1, "{why} {sig} to everything left"),
                    Why::Forced => warn!("{why} {sig} to everything now"),
                }
                self.send(sig, to);
            }
            // shim's own signal is a SIGPIPE from a write to a broken stderr: logging about it
            // would write there again.
            Action::Drop { why: Dropped::OwnSignal, .. } => {}
            Action::Drop { sig, why } => info!(2, "not forwarding {sig}: {why}"),
            Action::SuspendSelf => {
                info!(1, "the program stopped; stopping too, to hand the terminal back");
                if let Err(e) = sys::stop_self() {
                    warn!("could not stop: {}", e.desc());
                }
            }
            Action::RestoreTerminal => {
                if let Err(e) = sys::restore_terminal(self.child) {
                    warn!("could not take the terminal back from the program: {}", e.desc());
                }
            }
            Action::ForegroundChild => {
                if let Err(e) = sys::give_terminal(self.child) {
                    warn!("could not give the terminal back to the program: {}", e.desc());
                }
            }
            Action::Hold { sig, until: due } => {
                info!(1, "{sig}: stopping; the program keeps serving for up to {} first", until(Some(due)));
            }
            Action::StartHook => {
                let hook: Vec<OsString> = self.config.pre_stop.iter().map(OsString::from).collect();
                match sys::spawn(&hook, false, self.user.as_ref()) {
                    Ok(pid) => {
                        info!(1, "pre-stop hook {} started as pid {pid}", Words(&hook));
                        self.hook = Some(pid);
                    }
                    Err(e) => {
                        let e = Error::spawn(OsStr::new(&self.config.pre_stop[0]), e);
                        warn!("pre-stop hook: {e}; stopping anyway");
                        return Done::Then(Event::HookExited);
                    }
                }
            }
            Action::KillHook => {
                if let Some(pid) = self.hook {
                    warn!("pre-stop hook overran its time: killing it");
                    if let Err(e) = sys::signal_group(pid, SIGKILL) {
                        warn!("could not kill the pre-stop hook: {}", e.desc());
                    }
                }
            }
            Action::Exit(code) => {
                info!(1, "exiting with {} after {}", code.0, duration::display(self.clock.elapsed()));
                return Done::Exit(code);
            }
        }
        Done::Continue
    }

    fn send(&self, sig: Sig, to: Target) {
        let result = match to {
            Target::Child => sys::signal_process(self.child, sig),
            Target::Group => sys::signal_group(self.child, sig),
            Target::Everyone if self.pid1 => sys::signal_namespace(sig),
            Target::Everyone => return self.send_to_descendants(sig),
        };
        match result {
            Ok(Sent::Delivered) => {}
            Ok(Sent::NoneThere) => info!(2, "{sig}: {} is gone already", self.name(to)),
            Err(e) => warn!("could not send {sig} to {}: {}", self.name(to), e.desc()),
        }
    }

    /// As subreaper, "everything" is every descendant, found in /proc: a process that left the
    /// group (setsid, a daemon) is still shim's to stop.
    fn send_to_descendants(&self, sig: Sig) {
        // The group first: it needs no scan, and a fork between scan and kill cannot escape it.
        if let Err(e) = sys::signal_group(self.child, sig) {
            warn!("could not send {sig} to group {}: {}", self.child, e.desc());
        }
        match sys::descendants() {
            Ok(scan) => {
                if scan.unreadable > 0 {
                    warn!("could not read {} process(es) in /proc: they were not sent {sig}", scan.unreadable);
                }
                // Members of the group got it already; a second SIGTERM would reach a handler twice.
                for e in scan.found.iter().filter(|e| e.pgrp != self.child.as_raw()) {
                    if let Err(err) = sys::signal_process(Pid::from_raw(e.pid), sig) {
                        warn!("could not send {sig} to pid {}: {}", e.pid, err.desc());
                    }
                }
            }
            Err(e) => {
                warn!("could not list descendants in /proc ({}): only group {} was signalled", e.desc(), self.child)
            }
        }
    }

    fn known(&self) -> Known {
        Known { main: self.child, hook: self.hook, watch: self.watch }
    }

    /// How a log line names `to`: written only if the line is, so that forwarding a signal
    /// formats nothing.
    fn name(&self, to: Target) -> Named {
        Named { to, child: self.child, pid1: self.pid1 }
    }
}

/// A target as the log names it.
struct Named {
    to: Target,
    child: Pid,
    pid1: bool,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to {
            Target::Child => write!(f, "pid {}", self.child),
            Target::Group => write!(f, "group {}", self.child),
            Target::Everyone if self.pid1 => f.write_str("every process in the namespace"),
            Target::Everyone => f.write_str("every descendant"),
        }
    }
}
