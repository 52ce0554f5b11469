# The demo IdP / echo server (tools/idp, binary `demo-idp`) for docker-compose.yml.
# Build context: tools/idp (small: Cargo.toml, src/, keys/ with TEST-ONLY keys). The crate
# builds on its own outside the workspace; without the workspace Cargo.lock, cargo resolves the
# newest semver-compatible dependencies. Demo use only.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin demo-idp && cp target/release/demo-idp /demo-idp

FROM debian:bookworm-slim
COPY --from=build /demo-idp /usr/local/bin/demo-idp
USER 65534:65534
ENTRYPOINT ["demo-idp"]
CMD ["serve", "--listen", "0.0.0.0:8081"]
