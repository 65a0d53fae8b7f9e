#!/bin/sh
# Renders nginx.conf (a template) from the environment into the runtime dir, then runs nginx in
# the foreground. `--print-path` only renders and prints the rendered file's path (for tests).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
template=${NGINX_TEMPLATE:-$here/nginx.conf}

export LISTEN_PORT="${LISTEN_PORT:-8080}"
export STATIC_ROOT="${STATIC_ROOT:-/usr/share/nginx/html}"
export BACKEND_URL="${BACKEND_URL:-http://backend.apps.svc.cluster.local:8000}"
export OTLP_URL="${OTLP_URL:-http://otel-gateway.observability.svc.cluster.local:4318}"
export FRONTEND_SERVICE_NAME="${FRONTEND_SERVICE_NAME:-frontend}"
# The app's "Trigger test error" control (a demo of browser errors in the log backend): off unless true.
export FRONTEND_SHOW_TEST_ERROR="${FRONTEND_SHOW_TEST_ERROR:-false}"
export NGINX_RUNTIME_DIR="${NGINX_RUNTIME_DIR:-/tmp/nginx}"
export OTLP_RATE_LIMIT="${OTLP_RATE_LIMIT:-20r/s}"
export OTLP_RATE_BURST="${OTLP_RATE_BURST:-40}"
# Sent to the collector on the browser's behalf, e.g. "Bearer <token>" for a remote gateway that
# checks one (the split-apps overlay); empty = no Authorization header.
export OTLP_AUTHORIZATION="${OTLP_AUTHORIZATION:-}"

fail() {
    echo "render-nginx-conf: $*" >&2
    exit 64
}

# Values land inside nginx directives and a JSON string: refuse anything that could break out.
matches() { printf '%s' "$2" | grep -Eqx -- "$1"; }
matches '[0-9]{1,5}' "$LISTEN_PORT" || fail "LISTEN_PORT must be a port number, got '$LISTEN_PORT'"
matches '/[A-Za-z0-9._/-]*' "$STATIC_ROOT" || fail "STATIC_ROOT must be an absolute path, got '$STATIC_ROOT'"
matches '/[A-Za-z0-9._/-]*' "$NGINX_RUNTIME_DIR" || fail "NGINX_RUNTIME_DIR must be an absolute path, got '$NGINX_RUNTIME_DIR'"
# Scheme, host and port only: a path would change how proxy_pass maps /api/ and /otlp/ URIs.
url='https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?'
BACKEND_URL=${BACKEND_URL%/}
OTLP_URL=${OTLP_URL%/}
matches "$url" "$BACKEND_URL" || fail "BACKEND_URL must be scheme://host[:port], got '$BACKEND_URL'"
matches "$url" "$OTLP_URL" || fail "OTLP_URL must be scheme://host[:port], got '$OTLP_URL'"
matches '[A-Za-z0-9][A-Za-z0-9._-]{0,62}' "$FRONTEND_SERVICE_NAME" ||
    fail "FRONTEND_SERVICE_NAME must be letters, digits, '.', '_', '-', got '$FRONTEND_SERVICE_NAME'"
matches 'true|false' "$FRONTEND_SHOW_TEST_ERROR" ||
    fail "FRONTEND_SHOW_TEST_ERROR must be true or false, got '$FRONTEND_SHOW_TEST_ERROR'"
matches '[0-9]+r/[sm]' "$OTLP_RATE_LIMIT" || fail "OTLP_RATE_LIMIT must look like 20r/s, got '$OTLP_RATE_LIMIT'"
matches '[0-9]+' "$OTLP_RATE_BURST" || fail "OTLP_RATE_BURST must be a number, got '$OTLP_RATE_BURST'"
[ -z "$OTLP_AUTHORIZATION" ] || matches 'Bearer [A-Za-z0-9._~+/=-]+' "$OTLP_AUTHORIZATION" ||
    fail "OTLP_AUTHORIZATION must be 'Bearer <token>' (token68 characters) or empty"
[ -r "$template" ] || fail "template not readable: $template"

mkdir -p "$NGINX_RUNTIME_DIR"
conf="$NGINX_RUNTIME_DIR/nginx.conf"
# Only these variables are substituted; nginx's own ($uri, $host, ...) pass through untouched.
envsubst '${LISTEN_PORT} ${STATIC_ROOT} ${BACKEND_URL} ${OTLP_URL} ${FRONTEND_SERVICE_NAME} ${FRONTEND_SHOW_TEST_ERROR} ${NGINX_RUNTIME_DIR} ${OTLP_RATE_LIMIT} ${OTLP_RATE_BURST} ${OTLP_AUTHORIZATION}' \
    <"$template" >"$conf.tmp"
mv "$conf.tmp" "$conf"

if [ "${1:-}" = "--print-path" ]; then
    echo "$conf"
    exit 0
fi
# -e: the compiled-in error log path is not writable on a read-only root filesystem.
exec nginx -e stderr -c "$conf" -g 'daemon off;'
