#!/usr/bin/env bash
# Signature verification inside wasm, in V8 (Node.js's, the engine Envoy embeds): the plugin's
# pure-Rust RSA (src/rsa.rs) against the rsa crate 0.9 it replaced, rsa 0.10.0-rc.20,
# dashu-int and a 64-bit-limb variant, plus PS256; its ECDSA (src/ecdsa.rs, ES256/ES384)
# against the p256/p384 crates it replaced; all in one run, one 2048-bit key (e = 65537),
# per-call µs as the median of 15 batches of ~60 ms after 3 warm-up batches, and the ratio to
# rsa 0.9 RS256. Then the token path (bench/token-wasm, the plugin linked as a library): what
# the plugin computes for a token without the host — parsing, a verified-token cache miss
# (lookup, parse, insert, evict) and hit — per token, median of 25 passes over 2000
# Descope-shaped RS256 tokens.
#
#   bench/crypto.sh            full run (~1 min once built): tables, bench/results/crypto.json
#                              and bench/results/token-path.json
#   bench/crypto.sh --smoke    2 batches of 2 calls each (seconds once built): checks that
#                              every candidate accepts the valid signature and refuses the
#                              tampered one, and that every token parses and every cache
#                              hit is found; writes no file and never judges timings
#
# Builds bench/crypto-wasm and bench/token-wasm (each its own workspace) for wasm32-wasip1
# into target-bench/, mints the tokens with bench/mint-many, and runs both with `node` (v18+,
# node:wasi preview1) through bench/run-wasm.mjs. Exits non-zero on any wrong verdict, a token
# that does not parse or a cache hit not found.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

smoke=0
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

command -v node >/dev/null || { echo "bench/crypto.sh needs Node.js (v18+) on PATH" >&2; exit 1; }
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1

BENCH_TARGET=$ROOT/target-bench
WASM_DIR=$BENCH_TARGET/wasm32-wasip1/release
echo "==> building bench/crypto-wasm, bench/token-wasm (wasm32-wasip1, release) and bench/mint-many" >&2
(cd bench/crypto-wasm && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --quiet --release --target wasm32-wasip1)
(cd bench/token-wasm && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --quiet --release --target wasm32-wasip1)
(cd bench/mint-many && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --quiet --release)

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src bench/crypto-wasm bench/token-wasm 2>/dev/null || commit="$commit+uncommitted src/ or bench/*-wasm"
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -1)
export BENCH_META BENCH_DATA_DIR
BENCH_META=$(printf '{"commit": "%s", "cpu": "%s", "cores": %s}' "$commit" "${cpu:-unknown}" "$(nproc)")
BENCH_DATA_DIR=$(mktemp -d)
trap 'rm -rf "$BENCH_DATA_DIR"' EXIT
"$BENCH_TARGET/release/bench-mint-many" tokens --alg RS256 --count "$([ "$smoke" = 1 ] && echo 40 || echo 2000)" \
    --ttl 3600 >"$BENCH_DATA_DIR/tokens.txt"

smoke_arg=()
[ "$smoke" = 1 ] && smoke_arg+=(--smoke)
echo "==> running them in $(node --version) (V8 $(node -p process.versions.v8))" >&2
# run NAME RESULT_FILE WASM [ARGS...]: the wasm's JSON into bench/results/RESULT_FILE (full run).
run() {
    local name=$1 result=$2 status=0
    shift 2
    node --no-warnings --experimental-wasi-unstable-preview1 bench/run-wasm.mjs "$@" "${smoke_arg[@]}" \
        >"$BENCH_DATA_DIR/out.json" || status=$?
    if [ "$status" != 0 ]; then
        echo "bench/crypto.sh: $name FAILED (exit $status): a wrong verdict, a refused token or a broken run" >&2
        exit "$status"
    fi
    if [ "$smoke" = 1 ]; then
        echo "==> smoke: $name as expected (timings above mean nothing at 2 calls)" >&2
    else
        mkdir -p bench/results
        cp "$BENCH_DATA_DIR/out.json" "bench/results/$result"
        echo "==> wrote bench/results/$result" >&2
    fi
}
run "signature verification" crypto.json "$WASM_DIR/bench-crypto-wasm.wasm"
run "token path" token-path.json "$WASM_DIR/bench-token-wasm.wasm" /data/tokens.txt
