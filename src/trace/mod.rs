//! OpenTelemetry traces (`tracing:`): one span per request with one child
//! span per attempt, one per TCP session, exported over OTLP/HTTP
//! (protobuf) by `opentelemetry-otlp`'s exporter from a background task.
//!
//! Sampling is parent-based: a client's `traceparent` keeps its trace id
//! and its sampled flag; a new trace is sampled with `sample_ratio`. Either
//! way the attempt's context goes upstream as `traceparent`. Export never
//! blocks a request: spans go into a bounded queue ([`QUEUE`]); when it is
//! full they are dropped and counted (`bulb_trace_spans_dropped_total`);
//! export errors are logged at most once a minute. A stopping bulb exports
//! what is queued before it exits ([`Tracer::flush`]). Without `tracing`,
//! nothing here runs and a client's `traceparent` passes as it came.

pub mod context;
pub mod span;

use crate::config::TracingSpec;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;
use span::RequestTrace;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Spans waiting for export at most.
pub const QUEUE: usize = 4096;
/// Spans per export request at most.
const BATCH: usize = 512;
/// How long a span may wait for a batch to fill.
const LINGER: Duration = Duration::from_millis(500);

/// What the export task is sent. Spans go in by value: the queue's slots
/// hold them, and boxing would add an allocation per span.
#[allow(clippy::large_enum_variant)]
enum Item {
    Span(SpanData),
    /// Export what came before now, then say so.
    Flush(oneshot::Sender<()>),
}

/// The tracer of one `tracing` section.
pub struct Tracer {
    /// What it was built from.
    pub spec: TracingSpec,
    queue: OnceLock<mpsc::Sender<Item>>,
}

impl Tracer {
    /// A tracer for `spec`; its export task starts with the first span.
    pub fn new(spec: TracingSpec) -> Tracer {
        Tracer {
            spec,
            queue: OnceLock::new(),
        }
    }

    /// The trace of a request that came with `traceparent` (if any).
    pub fn begin(&self, traceparent: Option<&[u8]>) -> RequestTrace {
        let parent = traceparent.and_then(context::parse);
        RequestTrace::new(parent, self.spec.sample_ratio)
    }

    /// Queue `spans` for export; those that do not fit, or that an export
    /// then fails to deliver, are counted in `dropped`.
    pub fn send(&self, spans: Vec<SpanData>, dropped: &Arc<AtomicU64>) {
        let tx = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(export(rx, self.spec.clone(), dropped.clone()));
            tx
        });
        for s in spans {
            if tx.try_send(Item::Span(s)).is_err() {
                dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Export every span queued so far (a stopping bulb's last ones);
    /// `false` when that took longer than `limit`.
    pub async fn flush(&self, limit: Duration) -> bool {
        let Some(tx) = self.queue.get() else {
            return true;
        };
        let (ack, done) = oneshot::channel();
        let flushed = async {
            tx.send(Item::Flush(ack)).await.ok()?;
            done.await.ok()
        };
        matches!(tokio::time::timeout(limit, flushed).await, Ok(Some(())))
    }
}

/// Export what `rx` brings, in batches, until every sender is gone.
async fn export(mut rx: mpsc::Receiver<Item>, spec: TracingSpec, dropped: Arc<AtomicU64>) {
    let built = SpanExporter::builder()
        .with_http()
        .with_endpoint(spec.otlp.clone())
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(Duration::from_secs(5))
        .build();
    let mut exporter = match built {
        Ok(e) => e,
        Err(e) => {
            log::error!(
                "tracing: cannot export to {}: {e}; spans are dropped",
                spec.otlp
            );
            while let Some(item) = rx.recv().await {
                match item {
                    Item::Span(_) => {
                        dropped.fetch_add(1, Relaxed);
                    }
                    Item::Flush(ack) => {
                        let _ = ack.send(());
                    }
                }
            }
            return;
        }
    };
    exporter.set_resource(
        &Resource::builder_empty()
            .with_service_name(spec.service_name.clone())
            .build(),
    );
    let logged = crate::clock::Throttle::new(Duration::from_secs(60));
    while let Some(first) = rx.recv().await {
        let (mut batch, mut ack) = match first {
            Item::Span(s) => (vec![s], None),
            Item::Flush(a) => (Vec::new(), Some(a)),
        };
        let deadline = tokio::time::Instant::now() + LINGER;
        while ack.is_none() && batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Item::Span(s))) => batch.push(s),
                Ok(Some(Item::Flush(a))) => ack = Some(a),
                _ => break,
            }
        }
        let n = batch.len();
        let result = match n {
            0 => Ok(()),
            _ => exporter.export(batch).await,
        };
        if let Some(a) = ack {
            let _ = a.send(());
        }
        if let Err(e) = result {
            dropped.fetch_add(n as u64, Relaxed);
            if logged.due() {
                log::warn!(
                    "tracing: export of {n} spans to {} failed: {e} (logged at most once a minute)",
                    spec.otlp
                );
            }
        }
    }
}
