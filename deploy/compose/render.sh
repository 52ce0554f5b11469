#!/bin/sh
# Run by the `render` service of docker-compose.yml (working directory: the repository,
# mounted read-only): renders $TEMPLATE with scripts/render-envoy-config.sh — the same renderer
# as scripts/demo.sh — into $OUTPUT. Every other template variable (LISTEN_HOST, IDP_HOST, ...,
# WASM_PATH) comes from the service's environment; PLUGIN_CONFIG_JSON is read from
# $PLUGIN_CONFIG_FILE. Writes to a temporary file first, so Envoy never sees half a config.
set -eu
: "${TEMPLATE:?}" "${PLUGIN_CONFIG_FILE:?}" "${OUTPUT:?}"
bash scripts/render-envoy-config.sh "$TEMPLATE" PLUGIN_CONFIG_JSON=@"$PLUGIN_CONFIG_FILE" >"$OUTPUT.tmp"
mv "$OUTPUT.tmp" "$OUTPUT"
echo "rendered $TEMPLATE -> $OUTPUT (plugin config: $PLUGIN_CONFIG_FILE)"
