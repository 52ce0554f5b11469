#!/usr/bin/env bash
# The demo: builds the plugin, starts the demo IdP, an echo upstream and a real Envoy 1.40
# with envoy/envoy.yaml.tmpl and envoy/demo-plugin-config.json, then shows with real requests
# what the filter does. Everything runs on 127.0.0.1 and is stopped at the end.
#
#   scripts/demo.sh          walkthrough, then stop
#   scripts/demo.sh --keep   walkthrough, then keep running until Ctrl-C
#
# Ports (override with env): LISTEN_PORT 10000, ADMIN_PORT 9901, IDP_PORT 8081, UPSTREAM_PORT 8082.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=false
[ "${1:-}" = "--keep" ] && KEEP=true
LISTEN_PORT=${LISTEN_PORT:-10000}
ADMIN_PORT=${ADMIN_PORT:-9901}
IDP_PORT=${IDP_PORT:-8081}
UPSTREAM_PORT=${UPSTREAM_PORT:-8082}
WORK=$(mktemp -d)
PIDS=()

stop() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop EXIT INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

say "Building the plugin and the demo IdP"
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --quiet --release --target wasm32-wasip1 -p jwt-authn-wasm --lib
cargo build --quiet -p demo-idp
scripts/install-envoy.sh
IDP=target/debug/demo-idp
ENVOY=.local/envoy/envoy/_bin/envoy
WASM=$PWD/target/wasm32-wasip1/release/jwt_authn_wasm.wasm

say "Starting the demo IdP (:$IDP_PORT), the echo upstream (:$UPSTREAM_PORT) and Envoy (:$LISTEN_PORT)"
"$IDP" serve --listen "127.0.0.1:$IDP_PORT" >"$WORK/idp.log" 2>&1 & PIDS+=($!)
"$IDP" echo --listen "127.0.0.1:$UPSTREAM_PORT" >"$WORK/echo.log" 2>&1 & PIDS+=($!)
scripts/render-envoy-config.sh envoy/envoy.yaml.tmpl \
  LISTEN_PORT="$LISTEN_PORT" ADMIN_PORT="$ADMIN_PORT" \
  UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT="$UPSTREAM_PORT" IDP_HOST=127.0.0.1 IDP_PORT="$IDP_PORT" \
  WASM_PATH="$WASM" PLUGIN_CONFIG_JSON=@envoy/demo-plugin-config.json >"$WORK/envoy.yaml"
"$ENVOY" -c "$WORK/envoy.yaml" --concurrency 2 --base-id $((40000 + $$ % 1000)) --disable-hot-restart \
  --log-level warn --log-path "$WORK/envoy.log" & PIDS+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" 2>/dev/null | grep -q LIVE && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" | grep -q LIVE || { cat "$WORK/envoy.log"; exit 1; }
URL=http://127.0.0.1:$LISTEN_PORT

say "1. A public route needs no token"
show "curl $URL/healthz"
curl -sS -o /dev/null -w 'HTTP %{http_code}\n' "$URL/healthz"

say "2. No token: 401 with an RFC 6750 challenge"
show "curl -i $URL/api/orders"
curl -sS -i "$URL/api/orders" | grep -Ei '^(HTTP|www-authenticate)|code'
echo

say "3. A token minted by the demo IdP (Descope-shaped: sub, tenants with roles and permissions)"
TOKEN=$("$IDP" mint --sub U2alice --tenant T1 --roles admin,viewer --permissions orders.read)
show "demo-idp mint --sub U2alice --tenant T1 --roles admin,viewer --permissions orders.read"
echo "${TOKEN:0:60}..."
show "curl -H 'Authorization: Bearer \$TOKEN' $URL/api/orders   # the upstream echoes what it received"
curl -sS -H "Authorization: Bearer $TOKEN" "$URL/api/orders" >"$WORK/echo.json"
python3 - "$WORK/echo.json" <<'PY'
import json, sys
seen = json.load(open(sys.argv[1]))
print("HTTP 200, the upstream received:")
for name in ("x-user-id", "x-tenant-id", "x-tenants"):
    print(f"  {name}: {seen['headers'].get(name)}")
print(f"  authorization: {seen['headers'].get('authorization', '(removed: forward is false)')}")
PY

say "4. The same token in Descope's DS cookie"
show "curl --cookie DS=\$TOKEN $URL/api/orders"
curl -sS -o /dev/null -w 'HTTP %{http_code}\n' --cookie "DS=$TOKEN" "$URL/api/orders"

say "5. A client cannot forge identity headers: x-user-id sent by the client is replaced"
show "curl -H 'Authorization: Bearer \$TOKEN' -H 'x-user-id: U2mallory' $URL/api/orders"
curl -sS -H "Authorization: Bearer $TOKEN" -H "x-user-id: U2mallory" "$URL/api/orders" \
  | python3 -c 'import json,sys; print("  x-user-id at the upstream:", json.load(sys.stdin)["headers"]["x-user-id"])'

say "6. A tampered token: 401 invalid_token"
TAMPERED=$(python3 -c 'import sys; t=sys.argv[1]; i=t.rindex(".")+10; print(t[:i]+("A" if t[i]!="A" else "B")+t[i+1:])' "$TOKEN")
show "curl -H 'Authorization: Bearer <the token with one signature character changed>' $URL/api/orders"
curl -sS -i -H "Authorization: Bearer $TAMPERED" "$URL/api/orders" | grep -Ei '^(HTTP|www-authenticate)|code'
echo

say "7. Stats (Envoy admin /stats)"
sleep 0.3 # the plugin hands its counters to Envoy on a 200 ms tick
curl -sS "http://127.0.0.1:$ADMIN_PORT/stats?filter=jwt_authn_wasm" | grep -v ': 0$' || true

if $KEEP; then
  say "Running: Envoy $URL, admin http://127.0.0.1:$ADMIN_PORT, IdP http://127.0.0.1:$IDP_PORT (Ctrl-C stops all)"
  wait
else
  say "Done; stopping Envoy, the IdP and the upstream. (scripts/demo.sh --keep leaves them running.)"
fi
