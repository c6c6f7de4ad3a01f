//! Every value a key takes when the file leaves it out, in one place: the
//! validator fills the model from these, and the model's `Default`s use
//! them too. (`../shared/SPEC.md` and `conf/bulb.yaml` state the same.)

use std::time::Duration;

/// `upstreams.*.retries`.
pub const RETRIES: u32 = 1;
/// `upstreams.*.connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `upstreams.*.read_timeout`.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// `upstreams.*.write_timeout`.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// `upstreams.*.discovery_interval`: how often hostnames are re-resolved.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// `upstreams.*.slow_start` given without a valid duration.
pub const SLOW_START: Duration = Duration::from_secs(30);
/// `upstreams.*.queue.timeout`.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a shared rate store before the local bucket decides.
pub const RATE_STORE_TIMEOUT: Duration = Duration::from_millis(5);
/// `upstreams.*.backends[].weight`.
pub const WEIGHT: u32 = 1;
/// `upstreams.*.passive.max_fails`.
pub const MAX_FAILS: u32 = 1;
/// `upstreams.*.passive.fail_timeout`.
pub const FAIL_TIMEOUT: Duration = Duration::from_secs(10);
/// `upstreams.*.health_check.interval`.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// `upstreams.*.health_check.timeout`.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// `upstreams.*.health_check.healthy_after`.
pub const HEALTHY_AFTER: u32 = 2;
/// `upstreams.*.health_check.unhealthy_after`.
pub const UNHEALTHY_AFTER: u32 = 3;
/// `upstreams.*.least_time.decay`.
pub const LEAST_TIME_DECAY: Duration = Duration::from_secs(10);
/// `upstreams.*.max_h2_streams`: concurrent streams per backend connection.
pub const MAX_H2_STREAMS: usize = 100;
/// `listeners[].idle_timeout` of a tcp listener.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// `limits.max_header_bytes`.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// `limits.client_keepalive_timeout`.
pub const CLIENT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// `limits.client_header_timeout`.
pub const CLIENT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `limits.client_body_timeout`.
pub const CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// `limits.client_read_buffer_bytes`: none (see README "Performance").
pub const CLIENT_READ_BUFFER_BYTES: usize = 0;
/// `limits.request_buffer_bytes`.
pub const REQUEST_BUFFER_BYTES: usize = 64 * 1024;
/// `pid_file` (Pingora's own default is not writable in a container).
pub const PID_FILE: &str = "/tmp/bulb.pid";
/// `upgrade_sock`.
pub const UPGRADE_SOCK: &str = "/tmp/bulb_upgrade.sock";
/// `grace_period_seconds` (Pingora's: 300).
pub const GRACE_PERIOD_SECONDS: u64 = 1;
/// `graceful_shutdown_timeout_seconds`.
pub const GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;

/// `work_stealing` for `threads` workers: off for one worker (there is
/// nothing to steal, and a current-thread runtime wakes tasks for less:
/// `bench/ab.sh` with `B_TOP="work_stealing: false"`, 8-13 % less CPU per
/// request), Pingora's default (on) for more.
pub fn work_stealing(threads: usize) -> bool {
    threads != 1
}

/// `threads`: one per core.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
