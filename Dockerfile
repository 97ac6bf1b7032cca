# syntax=docker/dockerfile:1
# Strata: multi-stage build (official Rust 1.95 builder, slim Debian runtime, non-root user).
FROM rust:1.95-bookworm AS build
# The build needs only cargo and the C compiler the image already has (no cmake, no nasm).
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
    && mkdir -p /data /keys && chown strata:strata /data /keys
COPY --from=build /src/target/release/strata /usr/local/bin/strata
USER 10001:10001
WORKDIR /data
# Objects and metadata; the master key for encryption at rest lives on its own volume (or a
# mounted secret) so a copy of /data alone cannot be decrypted.
VOLUME /data /keys
EXPOSE 9000
ENV STRATA_LISTEN=0.0.0.0:9000 STRATA_DATA_DIR=/data STRATA_MASTER_KEY_FILE=/keys/master.key
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["sh", "-c", "curl -fsS http://127.0.0.1:9000/_strata/health || curl -fsSk https://127.0.0.1:9000/_strata/health || exit 1"]
ENTRYPOINT ["/usr/local/bin/strata"]
CMD ["serve"]
