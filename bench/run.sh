#!/usr/bin/env bash
# The benchmark (README "Performance"): this plugin side by side with Envoy's native jwt_authn,
# no filter and a trivial wasm filter, in ONE run on the same Envoy 1.40 binary.
#
#   bench/run.sh           the full run (3 rounds of 10 s per cell after a 3 s warm-up, 5000
#                          distinct tokens; ~20 min); writes bench/results/latest.json
#   bench/run.sh --smoke   the same code path with tiny durations (1 round, 1 s per cell, no
#                          warm-up, 200 tokens);
#                          asserts only that every cell produced numbers and that the status
#                          codes are right (never timings); writes bench/results/smoke.json
#
# Overrides (env): BENCH_ROUNDS, BENCH_DURATION, BENCH_WARMUP (seconds), BENCH_DISTINCT (tokens),
# BENCH_CACHE_SIZE (jwt_cache_size), BENCH_KEEP_WORK=1 (keep the scratch directory),
# BENCH_SKIP_PLUGIN_BUILD=1 (measure the .wasm already at target/wasm32-wasip1/release).
#
# What it does: installs wrk (Debian package), Envoy (scripts/install-envoy.sh) and the
# wasm32-wasip1 target if missing; builds the plugin (target/wasm32-wasip1/release), the
# trivial filter and the token generator (target-bench); mints the tokens; starts one upstream
# Envoy (direct_response 200) and, for each setup in turn, an Envoy under test
# (--concurrency 1) in front of it; for each workload runs wrk -t1 -c8 for a warm-up, then
# for the measurement, and records requests/s, latency percentiles, status codes (wrk and the
# Envoy's own counters) and the Envoy's CPU time per request. The matrix runs in rounds, and
# within a round one workload on every setup before the next workload, a fresh Envoy per cell:
# the cells a ratio compares then run a minute apart, not a quarter hour, on a machine whose
# load drifts; the report takes each cell's median over the rounds. Then Envoy's memory with and
# without the plugin (--concurrency 2, after a load) and a no-collapse check (--concurrency 4,
# wrk -c64). bench/report.py checks the cells, prints the tables and writes the JSON.
# Everything listens on 127.0.0.1 only and everything started is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START_SECONDS=$SECONDS

MODE=full
case "${1:-}" in
  "") ;;
  --smoke) MODE=smoke ;;
  -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
if [ "$MODE" = smoke ]; then
  ROUNDS=${BENCH_ROUNDS:-1}
  DURATION=${BENCH_DURATION:-1}
  WARMUP=${BENCH_WARMUP:-0}
  DISTINCT=${BENCH_DISTINCT:-200}
  RSS_LOAD=${BENCH_RSS_LOAD:-1}
  SETTLE=0
  OUT=bench/results/smoke.json
else
  ROUNDS=${BENCH_ROUNDS:-3}
  DURATION=${BENCH_DURATION:-10}
  WARMUP=${BENCH_WARMUP:-3}
  DISTINCT=${BENCH_DISTINCT:-5000}
  RSS_LOAD=${BENCH_RSS_LOAD:-5}
  SETTLE=1
  OUT=bench/results/latest.json
fi
CACHE_SIZE=${BENCH_CACHE_SIZE:-4096}
CONNECTIONS=8
COLLAPSE_CONNECTIONS=64
COLLAPSE_CONCURRENCY=4
RSS_CONCURRENCY=2
REQUEST_PATH=/api/bench

ENVOY=$ROOT/.local/envoy/envoy/_bin/envoy
PLUGIN_WASM=$ROOT/target/wasm32-wasip1/release/jwt_authn_wasm.wasm
BENCH_TARGET=$ROOT/target-bench
TRIVIAL_WASM=$BENCH_TARGET/wasm32-wasip1/release/bench_trivial_filter.wasm
MINT=$BENCH_TARGET/release/bench-mint-many

step() { printf '\n==> [%ss] %s\n' "$((SECONDS - START_SECONDS))" "$*" >&2; }
fail() { echo "bench/run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Processes: every pid started is tracked, stopped by its own pid, and stopped at exit.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwt-bench.XXXXXX")
PIDS=()
untrack() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=(${keep[@]+"${keep[@]}"})
}
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  untrack "$1"
}
cleanup() {
  local status=$? p
  for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
  if [ "${BENCH_KEEP_WORK:-0}" = 1 ] || [ "$status" -ne 0 ]; then
    echo "bench/run.sh: scratch files (logs, rendered configs, wrk output) kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
step "tools: wrk, Envoy 1.40, wasm32-wasip1"
if ! command -v wrk >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "wrk is missing; install it (apt-get install wrk) or run as root"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq wrk >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; } ||
    fail "apt-get install wrk failed"
fi
command -v curl >/dev/null 2>&1 || fail "curl is missing"
# The interpreter itself, not a version manager's shim (those cost ~0.3 s a call).
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
PATH="$(dirname "$PYTHON"):$PATH"
# scripts/install-envoy.sh only when the binary is missing or another version (it reinstalls
# from scratch when its own check fails, which would pull the binary from under Envoys others
# may be running); one retry, as its check can fail spuriously.
envoy_version_ok() { local v; v=$("$ENVOY" --version 2>/dev/null) && [[ $v == */1.40.0/* ]]; }
envoy_version_ok || scripts/install-envoy.sh || envoy_version_ok || scripts/install-envoy.sh
envoy_version_ok || fail "Envoy 1.40.0 is not at $ENVOY"
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1

step "build: the plugin, the trivial filter, the token generator"
# Which plugin source is measured: the commit and whether its source differs, taken at build
# time (read-only git; no index refresh).
GIT_HEAD=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if GIT_OPTIONAL_LOCKS=0 git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null; then DIRTY=false; else DIRTY=true; fi
if [ "${BENCH_SKIP_PLUGIN_BUILD:-0}" = 1 ]; then
  echo "   BENCH_SKIP_PLUGIN_BUILD=1: measuring the plugin already at $PLUGIN_WASM" >&2
else
  cargo build --quiet --release --target wasm32-wasip1 -p jwt-authn-wasm --lib
fi
(cd bench/trivial-filter && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --quiet --release --target wasm32-wasip1)
(cd bench/mint-many && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --quiet --release)
for f in "$PLUGIN_WASM" "$TRIVIAL_WASM" "$MINT"; do [ -f "$f" ] || fail "build output $f missing"; done

step "tokens: $DISTINCT distinct RS256 and ES256 (demo-idp's fixed test keys)"
"$MINT" jwks >"$WORK/jwks.json"
"$MINT" tokens --alg RS256 --count "$DISTINCT" --ttl 14400 >"$WORK/rs256-distinct.txt" &
MINT_PID=$!
PIDS+=("$MINT_PID")
"$MINT" tokens --alg ES256 --count "$DISTINCT" --ttl 14400 >"$WORK/es256-distinct.txt"
wait "$MINT_PID" || fail "minting RS256 tokens failed"
untrack "$MINT_PID"
head -n 1 "$WORK/rs256-distinct.txt" >"$WORK/rs256-one.txt"

# ONE plugin configuration (jwt_authn schema) for the native filter and the plugin; the
# cached variant only adds jwt_cache_config. Keys inline (local_jwks): no JWKS fetching.
"$PYTHON" - "$WORK" "$CACHE_SIZE" <<'PY'
import json, sys
work, cache_size = sys.argv[1], int(sys.argv[2])
jwks = open(f"{work}/jwks.json").read().strip()
provider = {
    "issuer": "https://api.descope.com/P2demoproject",
    "audiences": ["P2demoproject"],
    "local_jwks": {"inline_string": jwks},
    "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
    "claim_to_headers": [
        {"header_name": "x-user-id", "claim_name": "sub"},
        {"header_name": "x-tenant-id", "claim_name": "dct"},
    ],
}
def config(p):
    return {"providers": {"descope": p},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}]}
json.dump(config(provider), open(f"{work}/auth.json", "w"), indent=2)
cached = dict(provider, jwt_cache_config={"jwt_cache_size": cache_size})
json.dump(config(cached), open(f"{work}/auth-cache.json", "w"), indent=2)
json.dump({}, open(f"{work}/empty.json", "w"))
json.dump({"noop": True}, open(f"{work}/noop.json", "w"))
PY

# ---------------------------------------------------------------------------------------------
# Envoy processes.
BASE_ID=$((20000 + ($$ % 2000) * 256))
ENVOY_PID="" ENVOY_ADMIN="" ENVOY_PORT=""

# start_envoy NAME YAML CONCURRENCY: sets ENVOY_PID, ENVOY_ADMIN (host:port), ENVOY_PORT.
start_envoy() {
  local name=$1 yaml=$2 concurrency=$3 i
  BASE_ID=$((BASE_ID + 1))
  rm -f "$WORK/$name.admin"
  "$ENVOY" -c "$yaml" --concurrency "$concurrency" --base-id "$BASE_ID" --disable-hot-restart \
    --log-level warn --log-path "$WORK/$name.log" --admin-address-path "$WORK/$name.admin" \
    >>"$WORK/$name.out" 2>&1 &
  ENVOY_PID=$!
  PIDS+=("$ENVOY_PID")
  for i in $(seq 1 300); do
    kill -0 "$ENVOY_PID" 2>/dev/null || { tail -n 30 "$WORK/$name.log" "$WORK/$name.out" >&2; fail "Envoy $name exited"; }
    if [ -s "$WORK/$name.admin" ]; then
      ENVOY_ADMIN=$(cat "$WORK/$name.admin")
      curl -fsS "http://$ENVOY_ADMIN/ready" 2>/dev/null | grep -q LIVE && break
    fi
    sleep 0.1
  done
  curl -fsS "http://$ENVOY_ADMIN/ready" 2>/dev/null | grep -q LIVE ||
    { tail -n 30 "$WORK/$name.log" >&2; fail "Envoy $name not ready"; }
  ENVOY_PORT=$(curl -fsS "http://$ENVOY_ADMIN/listeners?format=json" | "$PYTHON" -c '
import json, sys
for l in json.load(sys.stdin)["listener_statuses"]:
    print(l["local_address"]["socket_address"]["port_value"]); break')
  [ -n "$ENVOY_PORT" ] || fail "Envoy $name: no listener port"
}

step "upstream: an Envoy answering 200 itself (direct_response)"
start_envoy upstream bench/upstream.yaml 1
UPSTREAM_PID=$ENVOY_PID
UPSTREAM_PORT=$ENVOY_PORT

# render_setup SETUP: writes $WORK/SETUP.yaml.
render_setup() {
  local setup=$1 tmpl=envoy/envoy.yaml.tmpl wasm=$PLUGIN_WASM config=$WORK/auth.json strip=false
  case "$setup" in
    nofilter) config=$WORK/empty.json strip=true ;;
    trivial) wasm=$TRIVIAL_WASM config=$WORK/empty.json ;;
    trivial_noop) wasm=$TRIVIAL_WASM config=$WORK/noop.json ;;
    jwt_authn) tmpl=envoy/jwt_authn.yaml.tmpl ;;
    jwt_authn_cache) tmpl=envoy/jwt_authn.yaml.tmpl config=$WORK/auth-cache.json ;;
    plugin) ;;
    plugin_cache) config=$WORK/auth-cache.json ;;
    *) fail "unknown setup $setup" ;;
  esac
  scripts/render-envoy-config.sh "$tmpl" LISTEN_PORT=0 ADMIN_PORT=0 \
    UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT="$UPSTREAM_PORT" IDP_HOST=127.0.0.1 IDP_PORT=9 \
    WASM_PATH="$wasm" PLUGIN_CONFIG_JSON=@"$config" >"$WORK/$setup.yaml"
  if $strip; then
    # No filter: the same topology with the wasm filter's entry taken out of http_filters.
    "$PYTHON" - "$WORK/$setup.yaml" <<'PY'
import sys
path = sys.argv[1]
lines = open(path).read().split("\n")
start = next(i for i, l in enumerate(lines) if l.strip() == "- name: envoy.filters.http.wasm")
end = next(i for i, l in enumerate(lines) if l.strip() == "- name: envoy.filters.http.router")
assert start < end
open(path, "w").write("\n".join(lines[:start] + lines[end:]))
PY
  fi
}

is_auth() { case "$1" in jwt_authn* | plugin*) return 0 ;; *) return 1 ;; esac; }

# expected_status SETUP WORKLOAD
expected_status() {
  if is_auth "$1" && [ "$2" = none ]; then echo 401; else echo 200; fi
}

workload_arg() {
  case "$1" in
    rs256_one) echo "$WORK/rs256-one.txt" ;;
    rs256_distinct) echo "$WORK/rs256-distinct.txt" ;;
    es256_distinct) echo "$WORK/es256-distinct.txt" ;;
    none) echo none ;;
    *) fail "unknown workload $1" ;;
  esac
}

# The Envoy's status counters, its CPU ticks (all threads, and its workers), as JSON.
envoy_counters() {
  local stats
  stats=$(curl -fsS -G "http://$ENVOY_ADMIN/stats" \
    --data-urlencode 'filter=^(http\.ingress\.downstream_rq_([0-9]xx|completed)|wasmcustom\.jwt_authn_wasm\.(token_cache\.(hit|miss)|crypto\.host))$')
  "$PYTHON" - "$ENVOY_PID" "$stats" <<'PY'
import json, os, sys
pid, stats = sys.argv[1], sys.argv[2]
out = {}
for line in stats.splitlines():
    name, _, value = line.partition(":")
    name = name.strip()
    key = name.split("jwt_authn_wasm.", 1)[1] if name.startswith("wasmcustom.") else name.rsplit(".", 1)[-1]
    out[key] = int(value)
def ticks(stat, which=(11, 12)):  # fields after the comm: 11 utime, 12 stime
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(fields[i]) for i in which)
proc = open(f"/proc/{pid}/stat").read()
out["cpu_ticks"] = ticks(proc)
out["user_ticks"] = ticks(proc, (11,))
out["sys_ticks"] = ticks(proc, (12,))
workers = 0
for tid in os.listdir(f"/proc/{pid}/task"):
    try:
        stat = open(f"/proc/{pid}/task/{tid}/stat").read()
    except OSError:
        continue
    if "(wrk:worker" in stat:
        workers += ticks(stat)
out["worker_cpu_ticks"] = workers
out["clk_tck"] = os.sysconf("SC_CLK_TCK")
print(json.dumps(out))
PY
}

# run_wrk FILE DURATION CONNECTIONS ARG [--latency]: the WRK_JSON line of the run.
run_wrk() {
  local file=$1 duration=$2 connections=$3 arg=$4
  shift 4
  wrk -t1 -c"$connections" -d"${duration}s" "$@" -s bench/tokens.lua \
    "http://127.0.0.1:$ENVOY_PORT$REQUEST_PATH" -- "$arg" >"$file" 2>&1 ||
    { cat "$file" >&2; fail "wrk failed"; }
  grep '^WRK_JSON ' "$file" | tail -n 1 | cut -d' ' -f2- | grep . || { cat "$file" >&2; fail "wrk printed no result"; }
}

# measure KIND SETUP WORKLOAD CONNECTIONS CONCURRENCY: one cell, appended to $WORK/KIND.jsonl.
measure() {
  local kind=$1 setup=$2 workload=$3 connections=$4 concurrency=$5 arg expected token preflight
  local before after result
  arg=$(workload_arg "$workload")
  expected=$(expected_status "$setup" "$workload")
  if [ "$arg" = none ]; then
    preflight=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ENVOY_PORT$REQUEST_PATH")
  else
    token=$(head -n 1 "$arg")
    preflight=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
      "http://127.0.0.1:$ENVOY_PORT$REQUEST_PATH")
  fi
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "$WORK/wrk-$kind-$setup-$workload-warmup.txt" "$WARMUP" "$connections" "$arg" >/dev/null
  fi
  before=$(envoy_counters)
  result=$(run_wrk "$WORK/wrk-$kind-$setup-$workload.txt" "$DURATION" "$connections" "$arg" --latency)
  sleep 0.3 # the plugin hands its request counters to Envoy on its 200 ms tick
  after=$(envoy_counters)
  "$PYTHON" - "$kind" "$setup" "$workload" "$connections" "$concurrency" "$expected" "$preflight" \
    "$result" "$before" "$after" "${ROUND:-1}" >>"$WORK/$kind.jsonl" <<'PY'
import json, sys
kind, setup, workload, conns, conc, expected, preflight, wrk, before, after, rnd = sys.argv[1:]
wrk, before, after = json.loads(wrk), json.loads(before), json.loads(after)
delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "clk_tck"}
tck = after["clk_tck"]
n = wrk["requests"]
cell = {
    "setup": setup, "workload": workload, "round": int(rnd),
    "connections": int(conns), "envoy_concurrency": int(conc),
    "expected_status": int(expected), "preflight_status": int(preflight),
    "requests": n, "duration_s": round(wrk["duration_us"] / 1e6, 3),
    "rps": round(n / (wrk["duration_us"] / 1e6), 1) if wrk["duration_us"] else 0,
    "p50_ms": wrk["p50_us"] / 1000, "p90_ms": wrk["p90_us"] / 1000, "p99_ms": wrk["p99_us"] / 1000,
    "mean_ms": round(wrk["mean_us"] / 1000, 3), "max_ms": wrk["max_us"] / 1000,
    "wrk_non2xx3xx": wrk["non2xx3xx"],
    "wrk_socket_errors": wrk["connect_errors"] + wrk["read_errors"] + wrk["write_errors"] + wrk["timeouts"],
    "envoy_rq": {k: delta.get(k, 0) for k in ("downstream_rq_2xx", "downstream_rq_4xx",
                                               "downstream_rq_5xx", "downstream_rq_completed")},
    "envoy_cpu_us_per_req": round(delta["cpu_ticks"] * 1e6 / tck / n, 1) if n else None,
    "envoy_worker_cpu_us_per_req": round(delta["worker_cpu_ticks"] * 1e6 / tck / n, 1) if n else None,
    # The plugin's own stats (absent elsewhere): verified-token cache and host crypto.
    "plugin_token_cache": {"hit": delta.get("token_cache.hit"), "miss": delta.get("token_cache.miss")}
                          if "token_cache.hit" in after else None,
    "plugin_crypto_host": after.get("crypto.host"),
    "envoy_user_us_per_req": round(delta["user_ticks"] * 1e6 / tck / n, 1) if n else None,
    "envoy_sys_us_per_req": round(delta["sys_ticks"] * 1e6 / tck / n, 1) if n else None,
}
print(json.dumps(cell))
print(f"   {setup:<16} {workload:<15} r{rnd} {cell['rps']:>7.0f} req/s  p50 {cell['p50_ms']:.2f} ms  "
      f"p99 {cell['p99_ms']:.2f} ms  non-2xx {cell['wrk_non2xx3xx']}/{n}  first request {preflight}"
      + (f"  cache hit/miss {cell['plugin_token_cache']['hit']}/{cell['plugin_token_cache']['miss']}"
         f"  crypto.host {cell['plugin_crypto_host']}" if cell["plugin_token_cache"] else ""),
      file=sys.stderr)
PY
}

stop_envoy() { stop_pid "$ENVOY_PID"; ENVOY_PID=""; }

# ---------------------------------------------------------------------------------------------
SETUPS=(nofilter trivial jwt_authn jwt_authn_cache plugin plugin_cache)
WORKLOADS=(rs256_one rs256_distinct es256_distinct none)
: >"$WORK/matrix.jsonl"
: >"$WORK/floor.jsonl"
: >"$WORK/collapse.jsonl"
: >"$WORK/rss.jsonl"

step "matrix: $ROUNDS round(s) of ${#SETUPS[@]} setups x ${#WORKLOADS[@]} workloads, Envoy --concurrency 1, wrk -t1 -c$CONNECTIONS, ${WARMUP}s warm-up + ${DURATION}s each"
for setup in "${SETUPS[@]}"; do render_setup "$setup"; done
for ROUND in $(seq 1 "$ROUNDS"); do
  for workload in "${WORKLOADS[@]}"; do
    for setup in "${SETUPS[@]}"; do
      start_envoy "$setup" "$WORK/$setup.yaml" 1
      measure matrix "$setup" "$workload" "$CONNECTIONS" 1
      stop_envoy
    done
  done
done

step "floor breakdown: the trivial filter with its header calls switched off"
render_setup trivial_noop
start_envoy trivial_noop "$WORK/trivial_noop.yaml" 1
measure floor trivial_noop none "$CONNECTIONS" 1
stop_envoy

step "memory: Envoy --concurrency $RSS_CONCURRENCY, VmRSS idle and after ${RSS_LOAD}s of distinct RS256 tokens"
for setup in nofilter trivial jwt_authn plugin; do
  render_setup "$setup"
  start_envoy "rss-$setup" "$WORK/$setup.yaml" "$RSS_CONCURRENCY"
  idle_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$ENVOY_PID/status")
  run_wrk "$WORK/wrk-rss-$setup.txt" "$RSS_LOAD" "$CONNECTIONS" "$WORK/rs256-distinct.txt" >/dev/null
  sleep "$SETTLE"
  loaded_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$ENVOY_PID/status")
  hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$ENVOY_PID/status")
  memory=$(curl -fsS "http://$ENVOY_ADMIN/memory")
  "$PYTHON" - "$setup" "$idle_kb" "$loaded_kb" "$hwm_kb" "$memory" "$RSS_CONCURRENCY" >>"$WORK/rss.jsonl" <<'PY'
import json, sys
setup, idle, loaded, hwm, memory, conc = sys.argv[1:]
m = json.loads(memory)
print(json.dumps({"setup": setup, "envoy_concurrency": int(conc), "vmrss_idle_kib": int(idle),
                  "vmrss_after_load_kib": int(loaded), "vmhwm_kib": int(hwm),
                  "tcmalloc_allocated_bytes": int(m.get("allocated", 0)),
                  "tcmalloc_heap_size_bytes": int(m.get("heap_size", 0))}))
PY
  printf '   %-16s VmRSS idle %s KiB, after load %s KiB\n' "$setup" "$idle_kb" "$loaded_kb" >&2
  stop_envoy
done

step "no collapse: Envoy --concurrency $COLLAPSE_CONCURRENCY, wrk -t1 -c$COLLAPSE_CONNECTIONS, distinct RS256 tokens"
for setup in nofilter jwt_authn plugin; do
  render_setup "$setup"
  start_envoy "collapse-$setup" "$WORK/$setup.yaml" "$COLLAPSE_CONCURRENCY"
  measure collapse "$setup" rs256_distinct "$COLLAPSE_CONNECTIONS" "$COLLAPSE_CONCURRENCY"
  stop_envoy
done
stop_pid "$UPSTREAM_PID"

# ---------------------------------------------------------------------------------------------
step "report"
ENVOY_VERSION=$("$ENVOY" --version | sed -n 's/.*version: //p' | head -n 1)
"$PYTHON" bench/report.py --out "$OUT" --work "$WORK" --mode "$MODE" \
  --envoy-version "$ENVOY_VERSION" --plugin-wasm "$PLUGIN_WASM" --trivial-wasm "$TRIVIAL_WASM" \
  --git-head "$GIT_HEAD" --plugin-source-dirty "$DIRTY" \
  --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" --distinct "$DISTINCT" --cache-size "$CACHE_SIZE" \
  --connections "$CONNECTIONS" --rss-load "$RSS_LOAD" --elapsed "$((SECONDS - START_SECONDS))"
