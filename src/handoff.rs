//! Applying a change of listeners without refusing a connection: start a
//! successor `bulb -u` with the same arguments and hand it the listening
//! sockets through Pingora's graceful upgrade (`upgrade_sock`), as nginx's
//! master does for a new binary. The successor reads the new file, keeps the
//! sockets that stay, binds the new ones; this process then drains and exits.

use log::info;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a successor may take to open the upgrade socket.
const SUCCESSOR_START_LIMIT: Duration = Duration::from_secs(10);

/// How to start a successor.
#[derive(Clone, Debug)]
pub struct Handoff {
    /// Pingora's `upgrade_sock` path.
    pub upgrade_sock: String,
    /// Arguments this process was started with (without the program name).
    pub args: Vec<String>,
}

/// Why a hand-over could not happen (this process keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// `current_exe` failed.
    #[error("cannot find own executable: {0}")]
    OwnExecutable(std::io::Error),
    /// The successor could not be started.
    #[error("cannot start successor {exe}: {source}")]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The successor exited before opening the upgrade socket.
    #[error("successor exited before taking the sockets: {0}")]
    SuccessorExited(std::process::ExitStatus),
    /// The successor did not open the upgrade socket in time.
    #[error("successor did not open the upgrade socket within {0:?}")]
    SuccessorTimeout(Duration),
    /// Watching for the upgrade socket failed.
    #[error("cannot watch for the upgrade socket {path}: {source}")]
    Watch {
        /// The socket path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Sending SIGQUIT to ourselves failed.
    #[error("cannot signal self: {0}")]
    Signal(std::io::Error),
}

impl Handoff {
    /// Start the successor and hand the sockets over to it; returns its pid.
    pub async fn hand_over(&self) -> Result<u32, HandoffError> {
        let exe = std::env::current_exe().map_err(HandoffError::OwnExecutable)?;
        let sock = PathBuf::from(&self.upgrade_sock);
        // A stale socket file would make us signal too early.
        let _ = std::fs::remove_file(&sock);
        let mut args: Vec<String> = self
            .args
            .iter()
            .filter(|a| *a != "-u" && *a != "--upgrade")
            .cloned()
            .collect();
        args.push("-u".into());
        let mut child = tokio::process::Command::new(&exe)
            .args(&args)
            .spawn()
            .map_err(|source| HandoffError::Spawn {
                exe: exe.clone(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        info!(
            "successor bulb started (pid {pid}), waiting for it on {}",
            self.upgrade_sock
        );
        let path = sock.clone();
        let created =
            tokio::task::spawn_blocking(move || wait_created(&path, SUCCESSOR_START_LIMIT));
        tokio::select! {
            r = created => match r {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    let _ = child.start_kill();
                    return Err(HandoffError::SuccessorTimeout(SUCCESSOR_START_LIMIT));
                }
                Ok(Err(source)) => {
                    let _ = child.start_kill();
                    return Err(HandoffError::Watch { path: self.upgrade_sock.clone(), source });
                }
                Err(join) => {
                    let _ = child.start_kill();
                    return Err(HandoffError::Watch {
                        path: self.upgrade_sock.clone(),
                        source: std::io::Error::other(join.to_string()),
                    });
                }
            },
            status = child.wait() => {
                return Err(match status {
                    Ok(s) => HandoffError::SuccessorExited(s),
                    Err(source) => HandoffError::Spawn { exe, source },
                });
            }
        }
        // Reap the successor should it ever exit while we live.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        // SIGQUIT is Pingora's "send the sockets to upgrade_sock, then drain".
        // SAFETY: kill(2) on our own pid with a valid signal number.
        let rc = unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) };
        if rc != 0 {
            return Err(HandoffError::Signal(std::io::Error::last_os_error()));
        }
        Ok(pid)
    }
}

/// Block until `path` exists (true) or `limit` passes (false), woken by
/// inotify events on its directory rather than by polling.
fn wait_created(path: &Path, limit: Duration) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: plain syscalls on a descriptor this function owns and closes.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        // SAFETY: `fd` is ours; `dir` is a valid C string.
        let wd = unsafe {
            libc::inotify_add_watch(fd, dir.as_ptr(), libc::IN_CREATE | libc::IN_MOVED_TO)
        };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let deadline = std::time::Instant::now() + limit;
        let mut events = [0u8; 4096];
        loop {
            // Checked after the watch is in place, so no creation is missed.
            if path.exists() {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            } else if n > 0 {
                // Consume the events; which file it was is checked above.
                // SAFETY: reading into a buffer we own, within its length.
                unsafe { libc::read(fd, events.as_mut_ptr().cast(), events.len()) };
            }
        }
    })();
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    result
}

#[cfg(test)]
mod tests {
    use super::wait_created;
    use std::time::{Duration, Instant};

    #[test]
    fn wakes_when_the_file_appears_and_times_out_otherwise() {
        let dir = std::env::temp_dir().join(format!("bulb-handoff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("upgrade.sock");
        let _ = std::fs::remove_file(&path);
        let p = path.clone();
        let maker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(&p, b"").expect("create");
        });
        let t = Instant::now();
        assert!(wait_created(&path, Duration::from_secs(5)).expect("watch"));
        assert!(t.elapsed() < Duration::from_secs(2));
        maker.join().expect("join");
        let missing = dir.join("never");
        assert!(!wait_created(&missing, Duration::from_millis(100)).expect("watch"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
