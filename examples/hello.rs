//! A tiny hello-world HTTP backend for the demo and for trying bulb:
//! `cargo run --example hello -- 127.0.0.1:9001 web1` answers every GET with
//! `Hello from web1` (keep-alive HTTP/1.1).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    let name = args.next().unwrap_or_else(|| addr.clone());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("hello backend {name} listening on {addr}");
    let body = format!("Hello from {name}\n");
    loop {
        let (mut sock, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut filled = 0;
            loop {
                match sock.read(&mut buf[filled..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => filled += n,
                }
                while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let close = head.contains("connection: close");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{}",
                        body.len(),
                        if close { "Connection: close\r\n" } else { "" },
                        body
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() || close {
                        return;
                    }
                    buf.copy_within(end + 4..filled, 0);
                    filled -= end + 4;
                }
                if filled == buf.len() {
                    return;
                }
            }
        });
    }
}
