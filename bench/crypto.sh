#!/usr/bin/env bash
# Signature verification inside wasm, in V8 (Node.js's, the engine Envoy embeds): the plugin's
# pure-Rust RSA (src/rsa.rs) against the rsa crate 0.9 it replaced, rsa 0.10.0-rc.20,
# dashu-int and a 64-bit-limb variant, plus PS256; its ECDSA (src/ecdsa.rs, ES256/ES384)
# against the p256/p384 crates it replaced; all in one run, one 2048-bit key (e = 65537),
# per-call µs as the median of 15 batches of ~60 ms after 3 warm-up batches, and the ratio to
# rsa 0.9 RS256.
#
#   bench/crypto.sh            full run (~1 min once built): table, bench/results/crypto.json
#   bench/crypto.sh --smoke    2 batches of 2 calls each (seconds once built): checks that
#                              every candidate accepts the valid signature and refuses the
#                              tampered one; writes no file and never judges timings
#
# Builds bench/crypto-wasm (its own workspace) for wasm32-wasip1 into target-bench/, and runs
# it with `node` (v20+, for node:wasi preview1). Exits non-zero on any wrong verdict.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

smoke=0
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

command -v node >/dev/null || { echo "bench/crypto.sh needs Node.js (v18+) on PATH" >&2; exit 1; }
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1

BENCH_TARGET=$ROOT/target-bench
WASM=$BENCH_TARGET/wasm32-wasip1/release/bench-crypto-wasm.wasm
echo "==> building bench/crypto-wasm (wasm32-wasip1, release)" >&2
(cd bench/crypto-wasm && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --quiet --release --target wasm32-wasip1)

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src/rsa.rs src/ecdsa.rs src/montgomery.rs bench/crypto-wasm 2>/dev/null || commit="$commit+uncommitted src/{rsa,ecdsa,montgomery}.rs or bench/crypto-wasm"
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -1)
export CRYPTO_BENCH_META
CRYPTO_BENCH_META=$(printf '{"commit": "%s", "cpu": "%s", "cores": %s}' "$commit" "${cpu:-unknown}" "$(nproc)")

args=()
[ "$smoke" = 1 ] && args+=(--smoke)
echo "==> running it in $(node --version) (V8 $(node -p process.versions.v8))" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
node --no-warnings --experimental-wasi-unstable-preview1 bench/crypto-wasm/run.mjs "$WASM" "${args[@]}" >"$out" || status=$?
if [ "$status" != 0 ]; then
    echo "bench/crypto.sh: FAILED (exit $status): a verdict was wrong or the run broke" >&2
    exit "$status"
fi
if [ "$smoke" = 1 ]; then
    echo "==> smoke: every verdict as expected (timings above mean nothing at 2 calls)" >&2
else
    mkdir -p bench/results
    cp "$out" bench/results/crypto.json
    echo "==> wrote bench/results/crypto.json" >&2
fi
