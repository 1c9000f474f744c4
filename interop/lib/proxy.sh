# Shared by the proxy peers' build and start scripts (sourced, not run):
# installing a Debian package, finding the reference server, and running the
# reference behind a proxy until either of the two exits.
#
# A proxy's start script defines `proxy_config PORT UPSTREAM_PORT` (writes the
# proxy's config for a listener on PORT and the reference on UPSTREAM_PORT)
# and then calls `proxy_run NAME PORT COMMAND...`.

# Bounds every wait for a process to come up.
ready_timeout_s="${READY_TIMEOUT_S:-30}"

# Installs the Debian packages named unless they are installed. A fresh machine
# may have no package lists yet: update once and retry. Fails (non-zero, with
# the package named) when apt cannot have them, so a peer never vanishes from
# the matrix silently.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "interop: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  flock /tmp/apt.lock apt-get install -y --no-install-recommends "${missing[@]}" ||
    { flock /tmp/apt.lock apt-get update &&
      flock /tmp/apt.lock apt-get install -y --no-install-recommends "${missing[@]}"; } ||
    { echo "interop: cannot install ${missing[*]} from apt" >&2; return 1; }
}

# The reference server: $GRPC_CONFORM, else the repo's target/debug/grpc-conform,
# else grpc-conform on PATH.
reference_server() {
  local lib
  lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  local reference="${GRPC_CONFORM:-}"
  if [[ -z "$reference" ]]; then
    reference="$lib/../../target/debug/grpc-conform"
    [[ -x "$reference" ]] || reference="grpc-conform"
  fi
  command -v "$reference" >/dev/null ||
    { echo "interop: no reference server ($reference); build it or set GRPC_CONFORM" >&2; return 1; }
  echo "$reference"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$1 accepts a connection, while process $2 ($3 names it)
# lives.
wait_listening() {
  local deadline=$((SECONDS + ready_timeout_s))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || { echo "interop: $3 exited before listening on $1" >&2; return 1; }
    ((SECONDS < deadline)) || { echo "interop: $3 not listening on $1 after ${ready_timeout_s}s" >&2; return 1; }
    sleep 0.1
  done
}

proxy_pids=()
proxy_stop() {
  trap - TERM INT
  for pid in "${proxy_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}

# proxy_run NAME PORT COMMAND...: the reference on a free port, proxy_config
# PORT UPSTREAM_PORT, then COMMAND (the proxy, in the foreground) until it
# listens on PORT; prints "listening on 127.0.0.1:PORT" and stops both on
# SIGTERM or SIGINT, or when either exits (a proxy without its upstream is not
# one).
proxy_run() {
  local name="$1" port="$2"
  shift 2
  local reference upstream_port status=0
  reference="$(reference_server)" || return 1
  trap 'proxy_stop; exit 0' TERM INT
  upstream_port="$(free_port)"
  "$reference" serve --listen "127.0.0.1:$upstream_port" &
  proxy_pids+=($!)
  wait_listening "$upstream_port" "${proxy_pids[0]}" "reference server" || { proxy_stop; return 1; }
  proxy_config "$port" "$upstream_port"
  "$@" &
  proxy_pids+=($!)
  wait_listening "$port" "${proxy_pids[1]}" "$name" || { proxy_stop; return 1; }
  echo "listening on 127.0.0.1:$port"
  wait -n || status=$?
  echo "interop/$name: a process exited (status $status); stopping" >&2
  proxy_stop
  return 1
}
