//! The measured trees run in a cpu cgroup of their own, as a container's processes do. There
//! the kernel's autogroup does not apply: outside one, with autogroup on, every new session is
//! a scheduling group of its own, so an init that starts its child in a new session
//! (dumb-init) has its round trips scheduled as no container would schedule them. Where no
//! cpu controller can be had, the suite runs where it was started, and the machine line of
//! the results says which cgroup that was.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

const NAME: &str = "shim-bench";

/// Move this process, and so everything it starts from now on, into a cpu cgroup of its own:
/// its path, or why not.
pub fn enter() -> Result<PathBuf, String> {
    // cgroup v1: a hierarchy with the cpu controller, alone or with cpuacct.
    for root in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
        let root = Path::new(root);
        if root.join("cgroup.procs").is_file() {
            return join(root.join(NAME));
        }
    }
    // cgroup v2: the unified hierarchy, with cpu enabled for the root's children.
    let root = Path::new("/sys/fs/cgroup");
    let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if !controllers.split_whitespace().any(|c| c == "cpu") {
        return Err("no cpu controller in /sys/fs/cgroup".to_string());
    }
    fs::write(root.join("cgroup.subtree_control"), "+cpu")
        .map_err(|e| format!("enable cpu in /sys/fs/cgroup/cgroup.subtree_control: {e}"))?;
    join(root.join(NAME))
}

fn join(dir: PathBuf) -> Result<PathBuf, String> {
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("create {}: {e}", dir.display())),
    }
    fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
        .map_err(|e| format!("move into {}: {e}", dir.display()))?;
    Ok(dir)
}
