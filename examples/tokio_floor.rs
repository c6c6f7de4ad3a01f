//! The "tokio floor" for benchmarks: a hand-written HTTP/1 keep-alive proxy on
//! tokio alone, with none of Pingora: `httparse` for heads, one pooled
//! keep-alive connection per request to round-robin backends, responses
//! framed by Content-Length only. It is not a proxy to run (no chunked
//! bodies, no request bodies, no timeouts, no header rewriting): it measures
//! what a Rust async proxy costs per request before any framework, so
//! `bench/run.sh` can tell Pingora's share of bulb's CPU from tokio's and the
//! kernel's.
//!
//! `tokio_floor LISTEN BACKEND...`

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Backends and their idle keep-alive connections (one thread: no locks).
struct Pools {
    backends: Vec<SocketAddr>,
    idle: Vec<RefCell<Vec<TcpStream>>>,
    next: Cell<usize>,
}

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().ok_or("usage: tokio_floor LISTEN BACKEND...")?;
    let backends = args
        .map(|b| b.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    if backends.is_empty() {
        return Err("no backends".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let pools = Rc::new(Pools {
            idle: backends.iter().map(|_| RefCell::default()).collect(),
            backends,
            next: Cell::new(0),
        });
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (client, _) = listener.accept().await?;
            let pools = pools.clone();
            tokio::task::spawn_local(async move {
                let _ = serve(client, &pools).await;
            });
        }
    })
}

/// Serves one client connection: one request at a time, no pipelining.
async fn serve(mut client: TcpStream, pools: &Pools) -> Result<(), Error> {
    client.set_nodelay(true)?;
    let mut req = Vec::with_capacity(4096);
    let mut resp = Vec::with_capacity(4096);
    loop {
        req.clear();
        let (head_len, close) = loop {
            if client.read_buf(&mut req).await? == 0 {
                return Ok(());
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(n) = parsed.parse(&req)? {
                let close = parsed.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("connection")
                        && h.value.eq_ignore_ascii_case(b"close")
                });
                if !close {
                    break (n, false);
                }
                // The client's `Connection: close` is hop-by-hop: the
                // backend connection stays open for the next client.
                let mut head = Vec::with_capacity(n);
                without_connection(&req, parsed.headers, &mut head);
                head.extend_from_slice(b"\r\n");
                let n = head.len();
                req = head;
                break (n, true);
            }
        };
        let i = pools.next.get() % pools.backends.len();
        pools.next.set(i + 1);
        let pooled = pools.idle[i].borrow_mut().pop();
        let mut up = match pooled {
            Some(up) => up,
            None => {
                let up = TcpStream::connect(pools.backends[i]).await?;
                up.set_nodelay(true)?;
                up
            }
        };
        up.write_all(&req[..head_len]).await?;
        resp.clear();
        let (resp_head, total) = loop {
            if up.read_buf(&mut resp).await? == 0 {
                return Err("backend closed".into());
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(n) = parsed.parse(&resp)? {
                let len = parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                    .ok_or("no content-length")?;
                break (n, n + len);
            }
        };
        while resp.len() < total {
            if up.read_buf(&mut resp).await? == 0 {
                return Err("backend closed".into());
            }
        }
        if close {
            // Tell the client this connection ends here, as nginx does.
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            parsed.parse(&resp)?;
            let mut out = Vec::with_capacity(total + 19);
            without_connection(&resp, parsed.headers, &mut out);
            out.extend_from_slice(b"Connection: close\r\n\r\n");
            out.extend_from_slice(&resp[resp_head..total]);
            client.write_all(&out).await?;
        } else {
            client.write_all(&resp[..total]).await?;
        }
        pools.idle[i].borrow_mut().push(up);
        if close {
            return Ok(());
        }
    }
}

/// Appends to `out` the first line of the message head in `raw` and its
/// `headers` but `Connection`, without the blank line that ends a head.
fn without_connection(raw: &[u8], headers: &[httparse::Header], out: &mut Vec<u8>) {
    let line = raw.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    out.extend_from_slice(&raw[..line]);
    for h in headers {
        if !h.name.eq_ignore_ascii_case("connection") {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value);
            out.extend_from_slice(b"\r\n");
        }
    }
}
