//! Applying a change of listeners without refusing a connection: start a
//! successor `bulb -u` with the same arguments and hand it the listening
//! sockets through Pingora's graceful upgrade (`upgrade_sock`), as nginx's
//! master does for a new binary. The successor reads the new file, keeps the
//! sockets that stay, binds the new ones; this process then drains and exits.

use log::info;
use std::path::Path;
use std::time::Duration;

/// How to start a successor.
#[derive(Clone, Debug)]
pub struct Handoff {
    /// Pingora's `upgrade_sock` path.
    pub upgrade_sock: String,
    /// Arguments this process was started with (without the program name).
    pub args: Vec<String>,
}

impl Handoff {
    /// Start the successor and hand the sockets over to it.
    pub async fn hand_over(&self) -> Result<(), String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let sock = Path::new(&self.upgrade_sock);
        // A stale socket file would make us signal too early.
        let _ = std::fs::remove_file(sock);
        let mut args: Vec<String> = self
            .args
            .iter()
            .filter(|a| *a != "-u" && *a != "--upgrade")
            .cloned()
            .collect();
        args.push("-u".into());
        let mut child = std::process::Command::new(&exe)
            .args(&args)
            .spawn()
            .map_err(|e| format!("cannot start successor {}: {e}", exe.display()))?;
        info!(
            "successor bulb started (pid {}), waiting for it on {}",
            child.id(),
            self.upgrade_sock
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "successor exited before taking the sockets: {status}"
                ));
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                return Err("successor did not open the upgrade socket within 10s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Reap the successor in the background should it ever exit while we live.
        std::thread::spawn(move || child.wait());
        // SIGQUIT is Pingora's "send the sockets to upgrade_sock, then drain".
        // SAFETY: kill(2) on our own pid with a valid signal number.
        let rc = unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) };
        if rc != 0 {
            return Err(format!(
                "cannot signal self: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}
