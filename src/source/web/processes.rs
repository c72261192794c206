//! The processes one web egress runs (a virtual display, a sound server, a browser), each
//! recorded in the egress's own directory, so that however tessera ends, what it started
//! is stopped: by [`EgressDir`]'s drop on any return or panic, by the kernel when tessera
//! dies (a parent-death signal), and by [`reap_leftovers`] on the next start for
//! whatever survived (a SIGKILL of a process whose children had already been re-parented).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A directory without an owner is left alone this long: it is being created.
const CREATION_GRACE: Duration = Duration::from_secs(60);
/// How long a stopped process gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Where web egresses keep their directories: `TESSERA_WEB_DIR`, else
/// `$TMPDIR/tessera-web`.
pub fn root() -> PathBuf {
    std::env::var_os("TESSERA_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tessera-web"))
}

/// Checks that `root` is a safe place for egress directories, creating it (0700) if it is
/// missing: a real directory (not a link), owned by this process's user, that no other
/// user may write (then closed to their reading too: mode 0700). Anything else could let another local user plant
/// `owner`/`children` files and have tessera kill processes of their choosing.
pub fn check_root(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)?;
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let m = std::fs::symlink_metadata(root)?;
    // SAFETY: geteuid(2) has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    let problem = if m.file_type().is_symlink() {
        Some("is a symbolic link".to_owned())
    } else if !m.is_dir() {
        Some("is not a directory".to_owned())
    } else if m.uid() != me {
        Some(format!(
            "belongs to uid {}, not to this user ({me})",
            m.uid()
        ))
    } else if m.mode() & 0o022 != 0 {
        // Others may have written into it already: nothing in it can be trusted.
        Some(format!(
            "has mode {:o}: others may write into it",
            m.mode() & 0o777
        ))
    } else {
        None
    };
    if problem.is_none() && m.mode() & 0o077 != 0 {
        // Ours and written only by us: close it to others' eyes too.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    }
    match problem {
        None => Ok(()),
        Some(why) => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} {why}: refusing to keep web egress processes there (remove it, or set TESSERA_WEB_DIR)",
                root.display()
            ),
        )),
    }
}

/// A file of an egress directory, read without following a link.
fn read_nofollow(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .read_to_string(&mut text)?;
    Ok(text)
}

/// A process's state letter (`/proc/PID/stat` field 3) and start time (clock ticks since
/// boot, field 22): with the pid, the start time names one process, never a later one
/// that reused the pid.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let state = rest.chars().next()?;
    Some((state, rest.split(' ').nth(19)?.parse().ok()?))
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, started)| started)
}

/// Whether the process `pid` that started at `started` is still there (a zombie counts
/// as gone).
fn alive(pid: u32, started: u64) -> bool {
    stat(pid).is_some_and(|(state, t)| state != 'Z' && t == started)
}

fn signal_group(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
    // Every process spawned here leads its own group (`process_group(0)`), so the group
    // is that process and the helpers it started (Chromium's renderers).
    unsafe {
        libc::kill(-(pid as libc::pid_t), sig);
    }
}

/// One running egress's directory: `owner` (this process), `children` (what it started),
/// and the processes' own files (browser profile, sound server socket, logs).
pub struct EgressDir {
    path: PathBuf,
    children: Mutex<Vec<(String, Child)>>,
}

impl EgressDir {
    /// Creates `{root}/{egress_id}` (mode 0700), owned by this process.
    pub fn create(root: &Path, egress_id: &str) -> std::io::Result<EgressDir> {
        use std::os::unix::fs::DirBuilderExt;
        check_root(root)?;
        let path = root.join(egress_id);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let me = std::process::id();
        let started = start_time(me).unwrap_or_default();
        std::fs::write(path.join("owner"), format!("{me} {started}\n"))?;
        Ok(EgressDir {
            path,
            children: Mutex::new(Vec::new()),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts `cmd` in a process group of its own, to be stopped with this directory (and
    /// killed by the kernel if this process dies first), and records it.
    pub fn spawn(&self, name: &str, cmd: &mut Command) -> std::io::Result<u32> {
        cmd.process_group(0);
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // prctl(2), which is async-signal-safe and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let pid = child.id();
        let started = start_time(pid).unwrap_or_default();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join("children"))?;
        writeln!(f, "{pid} {started} {name}")?;
        f.sync_all()?;
        self.children
            .lock()
            .expect("children lock")
            .push((name.to_owned(), child));
        Ok(pid)
    }

    /// Something taken from the process `name` (its stdout or stderr pipe, once).
    pub fn take<T>(&self, name: &str, f: impl FnOnce(&mut Child) -> Option<T>) -> Option<T> {
        let mut children = self.children.lock().expect("children lock");
        children
            .iter_mut()
            .find(|(n, _)| n == name)
            .and_then(|(_, c)| f(c))
    }

    /// A log file in the directory for a process's output (`/dev/null` if it cannot be
    /// made).
    pub fn log(&self, file: &str) -> std::process::Stdio {
        std::fs::File::create(self.path.join(file))
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null())
    }

    /// The first recorded process that has exited, and how.
    pub fn exited(&self) -> Option<(String, ExitStatus)> {
        let mut children = self.children.lock().expect("children lock");
        children
            .iter_mut()
            .find_map(|(name, c)| match c.try_wait() {
                Ok(Some(status)) => Some((name.clone(), status)),
                _ => None,
            })
    }

    /// Whether the process `name` is still running.
    #[cfg(test)]
    pub fn running(&self, name: &str) -> bool {
        let mut children = self.children.lock().expect("children lock");
        children
            .iter_mut()
            .any(|(n, c)| n == name && matches!(c.try_wait(), Ok(None)))
    }

    /// Stops every process, last started first (browser, then sound, then display):
    /// SIGTERM to its group, SIGKILL after [`TERM_GRACE`].
    fn stop_all(&self) {
        let mut children = self.children.lock().expect("children lock");
        while let Some((name, mut child)) = children.pop() {
            let pid = child.id();
            if matches!(child.try_wait(), Ok(None)) {
                signal_group(pid, libc::SIGTERM);
                let deadline = Instant::now() + TERM_GRACE;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            // The group may outlive its leader (helpers that ignore SIGTERM).
            signal_group(pid, libc::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            tracing::debug!(process = %name, pid, "stopped");
        }
    }
}

impl Drop for EgressDir {
    fn drop(&mut self) {
        self.stop_all();
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e, "cannot remove the web egress directory");
        }
    }
}

/// Whether `dir` was made less than [`CREATION_GRACE`] ago.
fn recent(dir: &Path) -> bool {
    std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < CREATION_GRACE))
}

/// Stops what earlier runs left behind: for every egress directory under `root` whose
/// owner is gone (or that has had no owner for a minute), kills each recorded process that is still the one recorded (pid and
/// start time) with its group, and removes the directory. Returns how many directories
/// were cleaned.
pub fn reap_leftovers(root: &Path) -> usize {
    if !root.exists() {
        return 0;
    }
    if let Err(e) = check_root(root) {
        tracing::warn!(error = %e, "not cleaning up after earlier runs");
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut reaped = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let pair = |line: &str| -> Option<(u32, u64)> {
            let mut it = line.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        };
        let owner = read_nofollow(&dir.join("owner"))
            .ok()
            .and_then(|s| pair(&s));
        match owner {
            Some((pid, started)) if alive(pid, started) => continue,
            // Another egress between creating its directory and naming its owner.
            None if recent(&dir) => continue,
            _ => {}
        }
        let children = read_nofollow(&dir.join("children")).unwrap_or_default();
        for line in children.lines() {
            if let Some((pid, started)) = pair(line)
                && alive(pid, started)
            {
                tracing::info!(pid, process = line.split_whitespace().nth(2).unwrap_or(""), dir = %dir.display(), "stopping a process left by an earlier run");
                signal_group(pid, libc::SIGKILL);
            }
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => reaped += 1,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a leftover web egress directory")
            }
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_another_user_could_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let fresh = base.path().join("fresh");
        check_root(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_root(&open).unwrap_err().to_string();
        assert!(e.contains("mode 777"), "{e}");
        // Ours and only readable by others: closed to them.
        let readable = base.path().join("readable");
        std::fs::create_dir(&readable).unwrap();
        std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_root(&readable).unwrap();
        let mode = std::fs::metadata(&readable).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(EgressDir::create(&open, "EG_x").is_err());

        let link = base.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(
            check_root(&link)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );

        // A planted leftover in a root that is not ours is not acted on.
        let planted = open.join("EG_planted");
        std::fs::create_dir(&planted).unwrap();
        let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = victim.id();
        std::fs::write(
            planted.join("children"),
            format!("{pid} {} sleep\n", start_time(pid).unwrap()),
        )
        .unwrap();
        assert_eq!(reap_leftovers(&open), 0);
        assert!(
            victim.try_wait().unwrap().is_none(),
            "a planted pid was killed"
        );
        victim.kill().unwrap();
        let _ = victim.wait();
    }

    #[test]
    fn a_root_of_another_user_is_refused() {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a directory away
        }
        let base = tempfile::tempdir().unwrap();
        let theirs = base.path().join("theirs");
        check_root(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        let e = check_root(&theirs).unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
    }

    #[test]
    fn a_dropped_dir_stops_its_processes_and_goes() {
        let root = tempfile::tempdir().unwrap();
        let dir = EgressDir::create(root.path(), "EG_drop").unwrap();
        let pid = dir
            .spawn("sleeper", Command::new("sleep").arg("60"))
            .unwrap();
        let started = start_time(pid).unwrap();
        assert!(dir.running("sleeper"));
        assert!(dir.exited().is_none());
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!alive(pid, started));
        assert!(!path.exists());
    }

    #[test]
    fn an_exited_process_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let dir = EgressDir::create(root.path(), "EG_exit").unwrap();
        dir.spawn("quick", Command::new("sh").args(["-c", "exit 3"]))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let (name, status) = loop {
            if let Some(e) = dir.exited() {
                break e;
            }
            assert!(Instant::now() < deadline, "no exit seen");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!((name.as_str(), status.code()), ("quick", Some(3)));
    }

    #[test]
    fn leftovers_of_a_dead_owner_are_killed_and_removed() {
        let root = tempfile::tempdir().unwrap();
        // What a killed run leaves: a directory whose owner is gone and a live process.
        let mut orphan = Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = orphan.id();
        let started = start_time(pid).unwrap();
        let left = root.path().join("EG_left");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join("owner"), "999999999 1\n").unwrap();
        std::fs::write(left.join("children"), format!("{pid} {started} sleeper\n")).unwrap();
        // A directory of a live owner (this process) is left alone.
        let live = EgressDir::create(root.path(), "EG_live").unwrap();
        assert_eq!(reap_leftovers(root.path()), 1);
        let _ = orphan.wait();
        assert!(!alive(pid, started));
        assert!(!left.exists());
        assert!(live.path().exists());
    }

    #[test]
    fn a_directory_being_created_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        // Another egress has made its directory and not yet written its owner.
        let young = root.path().join("EG_young");
        std::fs::create_dir(&young).unwrap();
        assert_eq!(reap_leftovers(root.path()), 0);
        assert!(young.exists());
    }

    #[test]
    fn a_recorded_pid_reused_by_another_process_is_not_killed() {
        let root = tempfile::tempdir().unwrap();
        let mut other = Command::new("sleep").arg("60").spawn().unwrap();
        let left = root.path().join("EG_reused");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join("owner"), "999999999 1\n").unwrap();
        // Same pid, another start time: not the process that was recorded.
        std::fs::write(left.join("children"), format!("{} 1 browser\n", other.id())).unwrap();
        assert_eq!(reap_leftovers(root.path()), 1);
        assert!(
            matches!(other.try_wait(), Ok(None)),
            "an unrelated process was killed"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
