//! One supervision from spawn to exit: the loop that waits in the kernel for a signal or the
//! next deadline, turns what the kernel says into [`Event`]s, feeds them to the [`Machine`],
//! and carries out its [`Action`]s through [`sys`]. It decides nothing itself.

use std::ffi::OsString;
use std::fmt;
use std::time::Instant;

use nix::unistd::Pid;

use crate::config::Config;
use crate::duration;
use crate::error::Error;
use crate::exit::{ExitCode, Status};
use crate::machine::{Action, Dropped, Event, Holder, Hook, JobControl, Machine, Origin, Policy, Target, Tty, Why};
use crate::signals::{Sig, SIGCHLD, SIGCONT};
use crate::sys::{self, Sent, Wait};
use crate::{info, warn};

/// What the loop knows besides the machine's state.
struct Run<'a> {
    config: &'a Config,
    child: Pid,
    pid1: bool,
    start: Instant,
    spawned: Instant,
    /// The pre-stop hook while it runs.
    hook: Option<Pid>,
    /// The grace period as the log writes it, formatted once.
    grace: String,
}

/// Run `config.program` under supervision and return the code shim should exit with.
pub fn run(config: &Config) -> Result<ExitCode, Error> {
    let start = Instant::now();
    let pid1 = sys::pid() == 1;
    if !pid1 {
        if let Err(e) = sys::become_subreaper() {
            warn!("could not become a child subreaper ({}): orphans will not be reaped or stopped by shim", e.desc());
        }
    }
    if let Some(sig) = config.pdeathsig {
        sys::set_parent_death_signal(sig).map_err(|e| Error::setup("set the parent-death signal", e))?;
    }
    let foreground = sys::shim_holds_terminal();
    let tty = if sys::stdin_is_terminal() { Tty::Present } else { Tty::Absent };
    let child = sys::spawn(&config.program, foreground).map_err(|e| Error::spawn(&config.program[0], e))?;
    let grace = duration::display(config.grace);
    let mut run = Run { config, child, pid1, start, spawned: Instant::now(), hook: None, grace };
    info!(
        1,
        "started {} as pid {child} in process group {child}{}{}",
        Quoted(&config.program),
        if pid1 { ", as PID 1" } else { ", as subreaper" },
        if foreground { ", in the terminal's foreground" } else { "" },
    );

    // The program has its own copies of inherited fds and of the working directory.
    if let Err(e) = sys::close_inherited_fds() {
        warn!("could not close inherited file descriptors: {}", e.desc());
    }
    if let Err(e) = sys::leave_working_directory() {
        warn!("could not move to /: {}", e.desc());
    }

    let policy = Policy {
        // Started in the background (`shim cat &`) it follows too: the program stops on its
        // first read of the terminal, shim with it, and `fg` brings both back.
        job_control: if !pid1 && tty == Tty::Present { JobControl::Follow } else { JobControl::Off },
        tty,
        stop_delay: config.stop_delay,
        pre_stop: if config.pre_stop.is_empty() { Hook::None } else { Hook::Configured },
        map: config.map.clone(),
        success: config.success.clone(),
        ..Policy::new(config.grace, config.forward_to)
    };
    let mut machine = Machine::new(policy);
    loop {
        let timeout = machine.deadline().map(|due| due.saturating_sub(start.elapsed()));
        let woken = sys::wait_signal(timeout).map_err(|e| Error::setup("wait for signals", e))?;
        let mut queue = Queue::default();
        run.events(woken, &mut queue);
        // The deadline is checked after every wake, not only on a timeout: under a steady
        // stream of signals the wait never times out, and escalation must not starve.
        queue.push(Event::Tick);
        while let Some(event) = queue.pop() {
            let now = start.elapsed();
            if event == Event::Tick && !machine.is_due(now) {
                continue;
            }
            for action in machine.handle(event, now) {
                match run.carry_out(action) {
                    Done::Exit(code) => return Ok(code),
                    Done::Then(next) => queue.push(next),
                    Done::Continue => {}
                }
            }
        }
    }
}

/// The events one wake-up stands for, in order. Fixed size: nothing on the signal path
/// allocates. One wake-up gives at most four (hook exit, reap, stop, tick) plus one an action
/// may cause.
#[derive(Default)]
struct Queue {
    items: [Option<Event>; 8],
    head: usize,
    len: usize,
}

impl Queue {
    fn push(&mut self, event: Event) {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(event);
                self.len += 1;
            }
            None => warn!("internal: event queue full, dropping {event:?}"),
        }
    }

    fn pop(&mut self) -> Option<Event> {
        let event = self.items.get_mut(self.head)?.take()?;
        self.head += 1;
        Some(event)
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
    /// The events one wake-up stands for.
    fn events(&mut self, woken: Wait, queue: &mut Queue) {
        match woken {
            Wait::Nothing => {}
            Wait::Signal { sig, .. } if sig == SIGCHLD => self.reap(queue),
            Wait::Signal { sig, origin: Origin::Shim } => queue.push(Event::OwnSignal(sig)),
            Wait::Signal { sig, origin: Origin::Keyboard } => {
                info!(3, "received {sig} from the terminal");
                queue.push(Event::KeyboardSignal(sig));
            }
            Wait::Signal { sig, .. } if sig == SIGCONT => {
                let holder = if sys::shim_holds_terminal() { Holder::Shim } else { Holder::Other };
                info!(3, "received SIGCONT; the terminal is {holder:?}'s");
                queue.push(Event::Continued { holder });
            }
            Wait::Signal { sig, origin: Origin::Outside } => {
                info!(3, "received {sig}");
                queue.push(Event::Signal(sig));
            }
        }
    }

    fn reap(&mut self, queue: &mut Queue) {
        let drained = match sys::drain(self.child, self.hook) {
            Ok(d) => d,
            Err(e) => {
                warn!("waiting for children failed: {}", e.desc());
                return;
            }
        };
        if let Some(status) = drained.hook {
            self.hook = None;
            match status {
                Status::Exited(0) => info!(1, "pre-stop hook finished"),
                Status::Exited(code) => warn!("pre-stop hook exited with {code}; stopping anyway"),
                Status::Signaled(sig) => warn!("pre-stop hook was killed by {sig}; stopping anyway"),
            }
            queue.push(Event::HookExited);
        }
        if let Some(status) = drained.main {
            let after = duration::display(self.spawned.elapsed());
            match status {
                Status::Exited(code) => info!(1, "main child {} exited with {code} after {after}", self.child),
                Status::Signaled(sig) => info!(1, "main child {} was killed by {sig} after {after}", self.child),
            }
        }
        if drained.others > 0 {
            info!(2, "reaped {} orphaned process(es)", drained.others);
        }
        // An exit in the same drain supersedes a stop: the machine must not suspend shim for
        // a program that is gone.
        if let Some(left) = drained.left {
            queue.push(Event::Reaped { main: drained.main, left });
        }
        if drained.main_stopped && drained.main.is_none() {
            queue.push(Event::MainStopped);
        }
    }

    /// Do what the machine decided.
    fn carry_out(&mut self, action: Action) -> Done {
        let grace = &self.grace;
        match action {
            Action::Send { sig, to, why } => {
                match why {
                    Why::Forward => info!(1, "forwarding {sig} to {}", self.name(to)),
                    Why::StopBegins => {
                        info!(1, "stopping: {sig} to {}, SIGKILL to everything left in {grace}", self.name(to))
                    }
                    Why::Leftovers => info!(1, "main child exited, others remain: {sig} to them, SIGKILL in {grace}"),
                    Why::Escalate => info!(1, "grace period of {grace} is over: {sig} to everything left"),
                    Why::Forced => {
                        warn!("stop forced (a third stop signal, or a second Ctrl-C): {sig} to everything now")
                    }
                }
                self.send(sig, to);
            }
            // shim's own signal is a SIGPIPE from a write to a broken stderr: logging about it
            // would write there again.
            Action::Drop { why: Dropped::OwnSignal, .. } => {}
            Action::Drop { sig, why } => {
                let reason = match why {
                    Dropped::Fault => "a fault signal means nothing to the program",
                    Dropped::NoTarget => "nothing left to send it to",
                    Dropped::Mapped => "--map-signal drops it",
                    Dropped::OwnSignal => "shim caused it itself",
                };
                info!(2, "not forwarding {sig}: {reason}");
            }
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
            Action::Hold { sig, until } => {
                let left = until.saturating_sub(self.start.elapsed());
                info!(1, "{sig}: stopping; the program keeps serving for up to {} first", duration::display(left));
            }
            Action::StartHook => match sys::spawn(&self.hook_command(), false) {
                Ok(pid) => {
                    info!(1, "pre-stop hook {} started as pid {pid}", Quoted(&self.hook_command()));
                    self.hook = Some(pid);
                }
                Err(e) => {
                    let e = Error::spawn(std::ffi::OsStr::new(&self.config.pre_stop[0]), e);
                    warn!("pre-stop hook: {e}; stopping anyway");
                    return Done::Then(Event::HookExited);
                }
            },
            Action::KillHook => {
                if let Some(pid) = self.hook {
                    warn!("pre-stop hook overran its time: killing it");
                    if let Err(e) = sys::signal_group(pid, crate::signals::SIGKILL) {
                        warn!("could not kill the pre-stop hook: {}", e.desc());
                    }
                }
            }
            Action::Exit(code) => {
                info!(1, "exiting with {} after {}", code.0, duration::display(self.start.elapsed()));
                return Done::Exit(code);
            }
        }
        Done::Continue
    }

    fn hook_command(&self) -> Vec<OsString> {
        self.config.pre_stop.iter().map(OsString::from).collect()
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
            Ok(found) => {
                // Members of the group got it already; a second SIGTERM would reach a handler twice.
                for e in found.iter().filter(|e| e.pgrp != self.child.as_raw()) {
                    match sys::signal_process(Pid::from_raw(e.pid), sig) {
                        Ok(_) => {}
                        Err(err) => warn!("could not send {sig} to pid {}: {}", e.pid, err.desc()),
                    }
                }
            }
            Err(e) => {
                warn!("could not list descendants in /proc ({}): only group {} was signalled", e.desc(), self.child)
            }
        }
    }

    fn name(&self, to: Target) -> String {
        match to {
            Target::Child => format!("pid {}", self.child),
            Target::Group => format!("group {}", self.child),
            Target::Everyone if self.pid1 => "every process in the namespace".to_string(),
            Target::Everyone => "every descendant".to_string(),
        }
    }
}

/// A command line for a log line.
struct Quoted<'a>(&'a [OsString]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for (i, word) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&word.to_string_lossy())?;
        }
        f.write_str("'")
    }
}
