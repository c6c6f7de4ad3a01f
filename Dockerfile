# bulb: multi-stage build. The builder has cmake for Pingora's build; the runtime is Debian slim.
FROM rust:1-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin bulb

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin bulb
COPY --from=builder /src/target/release/bulb /usr/local/bin/bulb
USER bulb
# NODES mode (no -c): listens on 0.0.0.0:8080, like strm/nginx-balancer.
EXPOSE 8080
# Exec form: bulb is PID 1 and gets SIGTERM directly (graceful stop). STOPSIGNAL stays
# SIGTERM: Pingora reads SIGQUIT as "hand the sockets to an upgrade".
ENTRYPOINT ["/usr/local/bin/bulb"]
