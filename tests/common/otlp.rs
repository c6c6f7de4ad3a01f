//! A real OTLP/HTTP trace receiver (`tests/peers/otlp_receiver.py`, on the
//! OpenTelemetry protobuf definitions of the `opentelemetry-proto` package)
//! that keeps every span it is sent.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Receiver {
    child: super::process::Reaped,
    pub port: u16,
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Listen on `port` (0: any free one).
    pub fn start(port: u16) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/otlp_receiver.py");
        let mut child = Command::new(super::grpc::python())
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("otlp receiver");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).expect("receiver's port");
        let port = first
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .expect("port line");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let keep = spans.clone();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line) {
                    keep.lock().unwrap().push(v);
                }
            }
        });
        Receiver {
            child: super::process::Reaped(child),
            port,
            spans,
        }
    }

    /// The traces URL bulb is given.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Value> {
        self.spans.lock().unwrap().clone()
    }

    /// Wait until the spans of trace `trace_id` number `n` (10 s at most).
    pub fn trace(&self, trace_id: &str, n: usize) -> Vec<Value> {
        let of = || -> Vec<Value> {
            self.spans()
                .into_iter()
                .filter(|s| s["trace_id"] == trace_id)
                .collect()
        };
        let _ = super::wait_for(Duration::from_secs(10), || of().len() >= n);
        of()
    }

    pub fn stop(&mut self) {
        self.child.stop();
    }
}
