#!/usr/bin/env bash
# Coverage-guided fuzzing of the pure core with cargo-fuzz (libFuzzer), on stable Rust.
#
#   scripts/fuzz.sh [SECONDS]        each target for SECONDS (default 60)
#   scripts/fuzz.sh --smoke          each target on its seed corpus, then ~10 s of fuzzing
#   scripts/fuzz.sh [...] TARGET...  only these targets (token, jwks, config, rsa, ecdsa)
#
# Targets (fuzz/fuzz_targets/): `token` (bytes as a token: jws::parse, key selection,
# verify_signature, claims::validate, and Authenticator::decide with the token in a header, a
# cookie and a query parameter), `jwks` (jwk::parse_jwks), `config` (config::Config::parse),
# `rsa` (our RSA verification against the rsa crate on fuzzer-shaped encodings: same verdict),
# `ecdsa` (our ECDSA against the p256/p384 crates: same verdicts, same points refused).
# None may panic or overflow (debug assertions are on); with FUZZ_SANITIZER=address, ASan
# also watches the dependencies' unsafe code for out-of-bounds access and leaks.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, sancov passes); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them, so no nightly is needed. cargo-fuzz itself is
# installed from crates.io when missing.
#
# The seed corpus (fuzz/corpus/<target>, committed) is read-only: new inputs go to
# fuzz/corpus-run/<target>, crashes to fuzz/artifacts/<target>/ (both ignored by git). A crash
# makes the script exit non-zero and prints how to reproduce it; turn it into a regression
# test in tests/attacks.rs. FUZZ_SANITIZER: none (default: the code under test is safe Rust,
# and ASan costs about 3x the executions per second) or address.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../fuzz"

seconds=60
smoke=0
targets=()
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1 ;;
        -h|--help) sed -n '2,23p' "$self"; exit 0 ;;
        ''|*[!0-9]*) targets+=("$arg") ;;
        *) seconds="$arg" ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(token jwks config rsa ecdsa)
[ "$smoke" = 1 ] && seconds=10

export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked
fi

echo "==> building the fuzz targets with $(rustc --version) (sanitizer: $sanitizer, debug assertions on)"
for t in "${targets[@]}"; do
    cargo fuzz build --sanitizer "$sanitizer" --debug-assertions "$t"
done

max_len() {
    case "$1" in
        token) echo 16384 ;; # twice the default max_token_size
        config) echo 32768 ;;
        *) echo 16384 ;;
    esac
}

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus-run/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    echo "==> fuzzing $t for ${seconds}s (seeds: corpus/$t, working corpus: corpus-run/$t)"
    set +e
    cargo fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
        -print_final_stats=1 2>&1 | tee "$log" | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==|SUMMARY|Test unit written|thread .* panicked)' || true
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ] || grep -qE 'Test unit written|SUMMARY: (libFuzzer|AddressSanitizer)' "$log"; then
        echo "!! $t: crash (exit $status); log: fuzz/$log"
        ls -1 "artifacts/$t" | grep -v last-run.log | sed "s|^|   fuzz/artifacts/$t/|" || true
        echo "   reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t artifacts/$t/<file>)"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "OK: ${targets[*]} ran ${seconds}s each without a crash"
