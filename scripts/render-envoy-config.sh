#!/usr/bin/env bash
# Renders an Envoy configuration template (envoy/*.yaml.tmpl) to stdout.
#
#   scripts/render-envoy-config.sh TEMPLATE [NAME=VALUE | NAME=@FILE]... > envoy.yaml
#
# Variables come from the environment and from NAME=VALUE arguments (arguments win);
# NAME=@FILE reads the value from FILE (handy for PLUGIN_CONFIG_JSON). Placeholders:
#   ${NAME}  ${NAME:-default}  ${NAME:json}  ${NAME:json-string}
# (see the header of envoy/envoy.yaml.tmpl); comment lines are left alone. The same rules as
# tests/support/mod.rs `render`.
# Fails, naming the variable, when a placeholder has no value or a :json value is not JSON.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 TEMPLATE [NAME=VALUE | NAME=@FILE]..." >&2
  exit 2
fi
exec python3 - "$@" <<'PY'
import json, os, re, sys

template_path, assignments = sys.argv[1], sys.argv[2:]
values = dict(os.environ)
for a in assignments:
    name, sep, value = a.partition("=")
    if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
        sys.exit(f"render-envoy-config: bad argument {a!r} (want NAME=VALUE or NAME=@FILE)")
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as f:
            value = f.read()
    values[name] = value
with open(template_path, encoding="utf-8") as f:
    text = f.read()

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*)|:(json|json-string))?\}")

def refuse_duplicates(pairs):
    # json.loads would keep the last of two members of one name; the plugin refuses such a
    # configuration, so the renderer must not quietly hand it a different one.
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate member {key!r}")
        seen[key] = value
    return seen

def substitute(m):
    name, default, mode = m.group(1), m.group(2), m.group(3)
    if name in values:
        value = values[name]
    elif default is not None:
        value = default
    else:
        sys.exit(f"render-envoy-config: {template_path}: variable {name} is not set")
    if mode:
        try:
            parsed = json.loads(value, object_pairs_hook=refuse_duplicates)
            compact = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
        except ValueError as e:
            sys.exit(f"render-envoy-config: {name} is not valid JSON: {e}")
        value = compact if mode == "json" else json.dumps(compact, ensure_ascii=False)
    return value

out = []
for line in text.splitlines(keepends=True):
    if line.lstrip().startswith("#"):
        out.append(line)  # comments are left alone
        continue
    line = PLACEHOLDER.sub(substitute, line)
    left = re.search(r"\$\{[^}]*\}", line)
    if left:
        sys.exit(f"render-envoy-config: unsupported placeholder {left.group(0)} in {template_path}")
    out.append(line)
sys.stdout.write("".join(out))
PY
