//! The contract's "Running": every zombie is reaped promptly, however many orphans arrive at once and however
//! SIGCHLDs coalesce; and idle, shim sleeps in the kernel.

mod common;
use common::*;

fn check_orphans_reaped(count: usize, within: f64) {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &[&probe, "orphans", &count.to_string()]);
        shim.expect(&format!("orphaned {count}"), secs(within));
        // They exit all at once once the gate opens; shim must collect every one.
        let clean =
            wait_for(secs(within), || (zombies_of(shim.pid) == 0 && descendants(shim.pid).len() == 1).then_some(()));
        assert!(
            clean.is_some(),
            "{mode:?}: {} zombies and {} descendants left",
            zombies_of(shim.pid),
            descendants(shim.pid).len()
        );
        assert!(alive(shim.pid));
        shim.signal(libc::SIGTERM);
        assert_eq!(shim.wait(secs(5.0)).0, 143, "{mode:?}");
    }
}

#[test]
fn orphans_are_reaped() {
    check_orphans_reaped(50, 5.0);
}

#[test]
fn a_storm_of_3000_orphans_leaves_no_zombie() {
    check_orphans_reaped(3000, 30.0);
}

#[test]
fn idle_shim_never_wakes() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &[&probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        wait_for(secs(5.0), || in_event_loop(shim.pid).then_some(())).expect("shim never settled");
        let before = context_switches(shim.pid);
        // Measuring idleness takes watching it idle.
        std::thread::sleep(secs(1.5));
        assert_eq!(context_switches(shim.pid), before, "{mode:?}: shim woke up while idle");
        shim.signal(libc::SIGTERM);
        assert_eq!(shim.wait(secs(5.0)).0, 0);
    }
}
