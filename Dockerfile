# syntax=docker/dockerfile:1
# Strata: multi-stage build (official Rust 1.95 builder, slim Debian runtime, non-root user).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
COPY fuzz ./fuzz
RUN cargo build --release --locked --bin strata

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* curl=7.88.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin strata \
    && mkdir -p /data && chown strata:strata /data
COPY --from=build /src/target/release/strata /usr/local/bin/strata
USER strata
WORKDIR /data
VOLUME /data
EXPOSE 9000
ENV STRATA_LISTEN=0.0.0.0:9000 STRATA_DATA_DIR=/data
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9000/_strata/health || curl -fsSk https://127.0.0.1:9000/_strata/health || exit 1
ENTRYPOINT ["/usr/local/bin/strata"]
CMD ["serve"]
