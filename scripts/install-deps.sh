#!/usr/bin/env bash
# Makes sure the local test runtime is installed: nginx + ngx_lua (Debian packages or OpenResty),
# lua-resty-core, busted, luacheck, tinyproxy, openssl, luarocks, wrk. Quiet when all is present.
# With --containers, also what the container runtime needs: the docker CLI and engine, debootstrap
# (base images where no registry answers). Installs the Debian packages when run as root with
# apt-get; otherwise prints the command.
set -euo pipefail

PACKAGES="nginx libnginx-mod-http-lua lua-resty-core lua-busted lua-check tinyproxy luarocks wrk openssl ca-certificates"
CONTAINER_TOOLS=""
if [ "${1:-}" = "--containers" ]; then
  PACKAGES="$PACKAGES docker.io debootstrap"
  CONTAINER_TOOLS="docker debootstrap"
  # dockerd only where the runtime may have to start one: no DOCKER_HOST, no local socket
  if [ -z "${DOCKER_HOST:-}" ] && [ ! -S /var/run/docker.sock ]; then CONTAINER_TOOLS="$CONTAINER_TOOLS dockerd"; fi
fi
OPENRESTY=/usr/local/openresty

have() { command -v "$1" >/dev/null 2>&1; }

nginx_bin() {
  if [ -n "${NGINX_BIN:-}" ]; then echo "$NGINX_BIN"
  elif have openresty; then command -v openresty
  elif [ -x "$OPENRESTY/nginx/sbin/nginx" ]; then echo "$OPENRESTY/nginx/sbin/nginx"
  elif have nginx; then command -v nginx
  fi
}

# ngx_lua is either compiled in (OpenResty) or a loadable module in nginx's --modules-path
has_ngx_lua() {
  local bin=$1 v dir
  v=$("$bin" -V 2>&1) || return 1
  if grep -qE 'lua-nginx-module|ngx_lua-|openresty/' <<<"$v"; then return 0; fi
  dir=$(grep -oE -- '--modules-path=[^ ]+' <<<"$v" | cut -d= -f2)
  [ -f "${dir:-/usr/lib/nginx/modules}/ngx_http_lua_module.so" ]
}

missing_deps() {
  local bin
  bin=$(nginx_bin)
  if [ -z "$bin" ]; then echo nginx
  elif ! has_ngx_lua "$bin"; then echo ngx_lua
  fi
  [ -f /usr/share/lua/5.1/resty/core.lua ] || [ -f "$OPENRESTY/lualib/resty/core.lua" ] || echo lua-resty-core
  for tool in busted luacheck tinyproxy openssl luarocks wrk $CONTAINER_TOOLS; do
    have "$tool" || echo "$tool"
  done
}

missing=$(missing_deps)
missing=${missing//$'\n'/ }
[ -z "$missing" ] && exit 0

echo "install-deps: missing: $missing"
if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
  echo "install-deps: run as root: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES" >&2
  exit 1
fi
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES

missing=$(missing_deps)
if [ -n "$missing" ]; then
  missing=${missing//$'\n'/ }
  echo "install-deps: still missing after apt-get install: $missing" >&2
  exit 1
fi
