//! Micro-benchmarks of bulb's own per-request code: backend selection for
//! every algorithm at 3 and 100 backends, routing, and header editing.
//! Run: `cargo bench --bench selection`.

use bulb::config::{parse, Algorithm};
use bulb::discovery::DnsCache;
use bulb::metrics::Metrics;
use bulb::pool::selection::Selector;
use bulb::pool::{BackendState, Start, Target, Tried};
use bulb::runtime::Runtime;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::Arc;

fn states(n: usize) -> Vec<Arc<BackendState>> {
    (0..n)
        .map(|i| {
            let addr = format!("10.0.{}.{}:80", i / 250, i % 250 + 1)
                .parse()
                .unwrap();
            Arc::new(BackendState::new(Target::new(addr), Start::Usable))
        })
        .collect()
}

fn selection(c: &mut Criterion) {
    for n in [3usize, 100] {
        let st = states(n);
        for alg in [
            Algorithm::RoundRobin,
            Algorithm::Random,
            Algorithm::ConsistentHash,
            Algorithm::LeastConnections,
            Algorithm::LeastTime,
        ] {
            let sel = Selector::build(alg, &st);
            let mut i = 0u64;
            c.bench_function(&format!("select/{}/{n}", alg.name()), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    let key = i.to_le_bytes();
                    black_box(sel.pick(black_box(&key), 8, |s| s.health.usable(0)))
                })
            });
        }
    }
}

fn pool_select(c: &mut Criterion) {
    let backends: String = (1..=100)
        .map(|i| format!("      - address: 10.0.0.{i}:80\n"))
        .collect();
    for alg in [
        "round_robin",
        "consistent_hash",
        "least_connections",
        "least_time",
    ] {
        let yaml = format!(
            "listeners: [{{address: 127.0.0.1:1}}]\nupstreams:\n  web:\n    algorithm: {alg}\n    backends:\n{backends}"
        );
        let rt = Runtime::build(
            parse(&yaml, "b").unwrap(),
            None,
            &DnsCache::default(),
            &Metrics::default(),
        );
        let pool = rt.pools[0].clone();
        for (i, b) in pool.members().all.iter().enumerate() {
            b.record_time(
                std::time::Duration::from_micros(500 + i as u64),
                std::time::Duration::from_secs(10),
            );
        }
        let tried = Tried::default();
        c.bench_function(&format!("pool_select/{alg}/100"), |b| {
            b.iter(|| black_box(pool.select(black_box(b"203.0.113.7"), &tried)))
        });
    }
}

fn routing(c: &mut Criterion) {
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nroutes:\n\
        \x20 - {host: api.example.com, path_prefix: /v1, upstream: a}\n\
        \x20 - {host: '*.example.com', upstream: b}\n\
        \x20 - {path_prefix: /static, upstream: a}\n  - {upstream: b}\n\
        upstreams:\n  a: {backends: [{address: 127.0.0.1:2}]}\n  b: {backends: [{address: 127.0.0.1:3}]}\n";
    let rt = Runtime::build(
        parse(yaml, "b").unwrap(),
        None,
        &DnsCache::default(),
        &Metrics::default(),
    );
    c.bench_function("route/4_rules/last_match", |b| {
        b.iter(|| black_box(rt.route(black_box(b"Shop.Other.org:8080"), black_box(b"/cart/items"))))
    });
    c.bench_function("route/4_rules/wildcard", |b| {
        b.iter(|| black_box(rt.route(black_box(b"www.example.com"), black_box(b"/"))))
    });
}

fn headers(c: &mut Criterion) {
    let mut base = pingora_http::RequestHeader::build("GET", b"/index.html", None).unwrap();
    for (k, v) in [
        ("Host", "www.example.com"),
        ("User-Agent", "bench/1.0"),
        ("Accept", "*/*"),
        ("Connection", "keep-alive"),
        ("X-Forwarded-For", "198.51.100.1"),
    ] {
        base.insert_header(k, v).unwrap();
    }
    let peer: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    // As per connection in bulb: the peer's text is made once.
    let peer_text = bulb::proxy::forward::shared_ip_value(peer);
    c.bench_function("headers/forwarding_edits", |b| {
        b.iter_batched(
            || base.clone(),
            |mut req| {
                bulb::proxy::forward::edit_request_headers(
                    &mut req,
                    Some(peer),
                    peer_text.clone(),
                    Some(peer),
                    false,
                    false,
                )
                .unwrap();
                req
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, selection, pool_select, routing, headers);
criterion_main!(benches);
