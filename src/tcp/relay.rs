//! Moving a TCP session's bytes both ways with `splice(2)`: socket → pipe →
//! socket, never through user space (how HAProxy moves bulk data). A
//! direction holds a pipe only while bytes are in it (pipes are pooled per
//! thread), so an idle session holds no buffer and no pipe. A FIN from one side is passed on as a half-close while the
//! other direction keeps flowing; a reset or error from one side resets the
//! other.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Most bytes moved by one `splice`: the capacity bulb asks for its pipes
/// (a default pipe has 16 slots, so a `splice` from a socket stops at 16
/// buffers however large they are).
const CHUNK: usize = 256 * 1024;

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both directions finished with a FIN.
    Closed,
    /// Nothing moved for the idle timeout.
    Idle,
    /// A side reset or failed.
    Reset,
}

/// Bytes moved so far, and when something last moved (for the idle timer).
#[derive(Default)]
pub struct Meter {
    /// Client to backend.
    pub up: AtomicU64,
    /// Backend to client.
    pub down: AtomicU64,
    last_ms: AtomicU64,
}

/// Relay between `client` and `backend` until both sides are done, one
/// fails, or nothing moves for `idle`.
pub async fn relay(client: &TcpStream, backend: &TcpStream, idle: Duration, meter: &Meter) -> End {
    meter.last_ms.store(crate::clock::now_ms(), Relaxed);
    let both = async {
        tokio::try_join!(
            pump(client, backend, &meter.up, &meter.last_ms),
            pump(backend, client, &meter.down, &meter.last_ms)
        )
    };
    let end = tokio::select! {
        r = both => match r {
            Ok(_) => End::Closed,
            Err(_) => End::Reset,
        },
        _ = idle_timer(idle, &meter.last_ms) => End::Idle,
    };
    if end == End::Reset {
        // Pass the failure on: close both with RST rather than FIN.
        reset(client);
        reset(backend);
    }
    end
}

/// Resolves once nothing has moved for `idle`.
async fn idle_timer(idle: Duration, last_ms: &AtomicU64) {
    let idle_ms = idle.as_millis() as u64;
    loop {
        let quiet = crate::clock::now_ms().saturating_sub(last_ms.load(Relaxed));
        if quiet >= idle_ms {
            return;
        }
        tokio::time::sleep(Duration::from_millis(idle_ms - quiet)).await;
    }
}

/// One direction: until `from` sends FIN (passed on to `to` as a
/// half-close) or an error. A pipe is held only while bytes are in it.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    moved: &AtomicU64,
    last_ms: &AtomicU64,
) -> io::Result<()> {
    loop {
        from.readable().await?;
        let pipe = Pipe::take()?;
        let n = match from.try_io(Interest::READABLE, || {
            splice(from.as_raw_fd(), pipe.write, CHUNK)
        }) {
            Ok(0) => {
                pipe.give_back();
                // SAFETY: shutdown(2) on a socket we hold open.
                unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                pipe.give_back();
                continue;
            }
            Err(e) => {
                pipe.give_back();
                return Err(e);
            }
        };
        let mut left = n;
        while left > 0 {
            // On an error the pipe is dropped (closed) with its bytes.
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe.read, to.as_raw_fd(), left)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        pipe.give_back();
        moved.fetch_add(n as u64, Relaxed);
        last_ms.store(crate::clock::now_ms(), Relaxed);
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: splice(2) between descriptors we own, no user memory involved.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Make closing `s` send a RST (SO_LINGER with a zero timeout).
fn reset(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) with a valid option value of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// Empty pipes kept per thread for the next chunk, as HAProxy pools them:
/// making and closing two pipes per session would cost four syscalls.
const POOLED_PIPES: usize = 64;

thread_local! {
    static PIPES: std::cell::RefCell<Vec<Pipe>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A non-blocking pipe, closed on drop.
struct Pipe {
    read: RawFd,
    write: RawFd,
}

impl Pipe {
    /// An empty pipe from this thread's pool, or a new one.
    fn take() -> io::Result<Pipe> {
        match PIPES.with(|p| p.borrow_mut().pop()) {
            Some(p) => Ok(p),
            None => Pipe::new(),
        }
    }

    /// Return an empty pipe to this thread's pool.
    fn give_back(self) {
        PIPES.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOLED_PIPES {
                pool.push(self);
            }
        });
    }

    fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: pipe2(2) fills the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // A larger pipe moves more per `splice` (fewer calls per byte); when
        // the system refuses (pipe-max-size, the user's pipe pages), the
        // default size still works.
        // SAFETY: fcntl(2) on a descriptor pipe2 just made.
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
        Ok(Pipe {
            read: fds[0],
            write: fds[1],
        })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: closing descriptors this pipe owns.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}
