//! `limits.rate.store: redis://…`: one bucket per key shared by every bulb
//! that names the store. The bucket is GCRA (the generic cell rate
//! algorithm: one "theoretical arrival time" per key), updated by one Lua
//! script, atomically, on Redis's clock: one round trip per request. The
//! connection is one multiplexed connection per process (redis-rs's
//! `ConnectionManager`, which reconnects by itself). The caller bounds each
//! call with `store_timeout` and lets the local bucket decide when the
//! store is slow or down.

use crate::clock::Throttle;
use crate::config::RateSpec;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::OnceLock;
use std::time::Duration;

/// GCRA on Redis's clock. KEYS[1]: the bucket; ARGV[1]: the interval
/// between requests at the rate (µs); ARGV[2]: the burst. Returns 0 when
/// the request may pass, else the wait in µs.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - burst * interval - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
"#;

/// A shared store of buckets.
pub struct RateStore {
    url: String,
    client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    script: redis::Script,
    /// Store errors are logged at most once a minute.
    logged: Throttle,
}

/// Why the store did not decide.
#[derive(Debug)]
pub struct StoreError(pub String);

impl RateStore {
    /// A store at `url` (checked by the validator); it connects on first use.
    pub fn new(url: &str) -> Option<RateStore> {
        Some(RateStore {
            url: url.to_string(),
            client: redis::Client::open(url).ok()?,
            conn: OnceLock::new(),
            script: redis::Script::new(GCRA),
            logged: Throttle::new(Duration::from_secs(60)),
        })
    }

    /// The URL it was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(c) = self.conn.get() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let c = ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(self.conn.get_or_init(|| c).clone())
    }

    /// Take one request from `key`'s bucket: `Ok(None)` when it may pass,
    /// `Ok(Some(wait))` when it is over the rate.
    pub async fn take(&self, key: &[u8], spec: &RateSpec) -> Result<Option<Duration>, StoreError> {
        let mut conn = self.connection()?;
        let mut k = Vec::with_capacity(10 + key.len());
        k.extend_from_slice(b"bulb:rate:");
        k.extend_from_slice(key);
        let interval_us = (1e6 / spec.per_second).max(1.0).round() as u64;
        let wait: u64 = self
            .script
            .key(k)
            .arg(interval_us)
            .arg(spec.burst)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }

    /// Log `e` unless a store error was logged within the last minute.
    pub fn log(&self, e: &str) {
        if self.logged.due() {
            log::warn!(
                "rate store {}: {e}; the local bucket decides until it answers (bulb_rate_store_errors_total counts every miss)",
                self.url
            );
        }
    }
}
