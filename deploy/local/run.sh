#!/usr/bin/env bash
# `make run`: Postgres + NATS, build, migrate, then every NexusOne binary that exists in
# target/debug, in the background with logs in .local/logs. Ctrl-C (or SIGTERM) stops them all.
#
# NEXUS_READY_TIMEOUT (seconds, default 30) bounds the wait for each /readyz.
# Any NEXUS_* variable set in the environment reaches every binary (DESIGN.md §10).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/services.sh
. "$here/services.sh"
cd "$NEXUS_ROOT"

READY_TIMEOUT=${NEXUS_READY_TIMEOUT:-30}
LOGS=$NEXUS_LOCAL/logs
PIDS=$NEXUS_LOCAL/run
export NEXUS_TELEMETRY__LOG_FORMAT=${NEXUS_TELEMETRY__LOG_FORMAT:-pretty}
# Local runs use the development rules: built-in keys, local mail and billing, local providers.
export NEXUS_ENVIRONMENT=${NEXUS_ENVIRONMENT:-development}

say() { printf '%s\n' "$*"; }
die() {
  printf 'run: %s\n' "$*" >&2
  exit 1
}

bash "$here/stack.sh" up
say "building (cargo build --workspace --bins)..."
cargo build --workspace --bins

mapfile -t names < <(nexus_built_names)
((${#names[@]})) || die "no nexus-* binary in $NEXUS_BIN_DIR"
skipped=()
for n in "${NEXUS_NAMES[@]}"; do
  [[ -x $NEXUS_BIN_DIR/nexus-$n ]] || skipped+=("$n")
done
if ((${#skipped[@]})); then say "not built yet, skipped: ${skipped[*]}"; fi

mkdir -p "$LOGS" "$PIDS"

# Per-binary environment: its listen addresses (from the table in services.sh) and, when the
# admin URL points somewhere else than the default, a runtime URL on the same server.
admin_url=$(nexus_admin_db_url)
read -r db_host db_port < <(url_host_port "$admin_url" 5432)
db_name=$(url_db_name "$admin_url")
envs=()
env_for() {
  local n=$1
  local -n out=$2
  out=("NEXUS_ADMIN__ADDR=127.0.0.1:${NEXUS_ADMIN_PORT[$n]}")
  if [[ $n == gateway ]]; then
    out+=("NEXUS_HTTP__ADDR=127.0.0.1:${NEXUS_PORT[$n]}")
  else
    out+=("NEXUS_GRPC__ADDR=127.0.0.1:${NEXUS_PORT[$n]}")
  fi
  # Ports from NEXUS_PORT_BASE: each binary's defaults name the table's addresses of the others.
  if [[ -n $NEXUS_PORT_BASE ]]; then
    local m
    out+=("NEXUS_IDENTITY__AUTH_URL=http://127.0.0.1:${NEXUS_PORT[auth]}")
    # Every service the binary's [services] section names (the gateway all; video and content
    # subscriptions, ...), read from its config.default.toml so a new caller needs no line here.
    for m in $(awk '/^\[/ { in_services = ($0 == "[services]") } in_services && /^[a-z_]+ *=/ { print $1 }' \
      "$NEXUS_ROOT/services/$n/config.default.toml" 2>/dev/null); do
      [[ -n ${NEXUS_PORT[$m]:-} ]] && out+=("NEXUS_SERVICES__${m^^}=http://127.0.0.1:${NEXUS_PORT[$m]}")
    done
    case $n in
      auth)
        out+=("NEXUS_AUTH__PUBLIC_URL=http://127.0.0.1:${NEXUS_PORT[gateway]}")
        ;;
      analytics)
        for m in "${NEXUS_NAMES[@]}"; do
          out+=("NEXUS_FLEET__SERVICES__${m^^}=http://127.0.0.1:${NEXUS_ADMIN_PORT[$m]}")
        done
        ;;
    esac
  fi
  if [[ -z ${NEXUS_DATABASE__URL:-} && -z ${NEXUS_DATABASE__URL_FILE:-} &&
    (-n ${NEXUS_DATABASE__ADMIN_URL:-} || -n ${NEXUS_DATABASE__ADMIN_URL_FILE:-}) ]]; then
    case $db_host in *:*) db_host="[$db_host]" ;; esac
    out+=("NEXUS_DATABASE__URL=postgres://nexus_$n@$db_host:$db_port/$db_name")
  fi
}

# A previous run killed without cleaning up (SIGKILL, closed terminal) would hold the ports.
for f in "$PIDS"/*.pid; do
  [[ -e $f ]] || continue
  pid=$(<"$f")
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$NEXUS_BIN_DIR"/nexus-* ]]; then
    say "stopping leftover $(basename "$f" .pid) (pid $pid) from an earlier run"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
done

for n in "${names[@]}"; do
  env_for "$n" envs
  log=$LOGS/$n.migrate.log
  env "${envs[@]}" "$NEXUS_BIN_DIR/nexus-$n" migrate >"$log" 2>&1 && status=0 || status=$?
  if ((status)); then
    printf '\nrun: MIGRATION FAILED: nexus-%s migrate exited %s. Last lines of %s:\n' "$n" "$status" "$log" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
done
say "migrated: ${names[*]}"

declare -A pid_of=()
stopping=0
stop_all() {
  local n pid i alive
  if ((stopping)) || ((${#pid_of[@]} == 0)); then return 0; fi
  stopping=1
  say "stopping: ${!pid_of[*]}"
  for n in "${!pid_of[@]}"; do kill -TERM "${pid_of[$n]}" 2>/dev/null || true; done
  # The binaries drain for up to their shutdown grace (25s by default).
  for ((i = 0; i < 350; i++)); do
    alive=0
    for pid in "${pid_of[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    if ((!alive)); then break; fi
    sleep 0.1
  done
  for n in "${!pid_of[@]}"; do
    if kill -0 "${pid_of[$n]}" 2>/dev/null; then
      say "nexus-$n did not stop in time; killing it"
      kill -KILL "${pid_of[$n]}" 2>/dev/null || true
    fi
    wait "${pid_of[$n]}" 2>/dev/null || true
    rm -f "$PIDS/$n.pid"
  done
  say "stopped"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

for n in "${names[@]}"; do
  env_for "$n" envs
  # setsid: the terminal's Ctrl-C reaches this script only; it then stops the binaries itself.
  env "${envs[@]}" setsid "$NEXUS_BIN_DIR/nexus-$n" serve >"$LOGS/$n.log" 2>&1 </dev/null &
  pid_of[$n]=$!
  printf '%s\n' "$!" >"$PIDS/$n.pid"
done

# Report each binary once its /readyz answers 200, or when it dies or the time runs out.
declare -A ready=()
start=$SECONDS
pending=${#names[@]}
while ((pending)); do
  for n in "${names[@]}"; do
    [[ -z ${ready[$n]:-} ]] || continue
    port=${NEXUS_ADMIN_PORT[$n]}
    if [[ $n == gateway ]]; then addr="http 127.0.0.1:${NEXUS_PORT[$n]}"; else addr="grpc 127.0.0.1:${NEXUS_PORT[$n]}"; fi
    if ! kill -0 "${pid_of[$n]}" 2>/dev/null; then
      wait "${pid_of[$n]}" && status=0 || status=$?
      unset "pid_of[$n]"
      printf '\nrun: nexus-%s exited (status %s) while starting. Last lines of %s:\n' "$n" "$status" "$LOGS/$n.log" >&2
      tail -n 40 "$LOGS/$n.log" >&2
      exit 1
    elif curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz" 2>/dev/null; then
      ready[$n]=1
      pending=$((pending - 1))
      printf '  %-22s ready      %-22s admin 127.0.0.1:%s  (%ss)\n' "nexus-$n" "$addr" "$port" "$((SECONDS - start))"
    elif ((SECONDS - start >= READY_TIMEOUT)); then
      ready[$n]=late
      pending=$((pending - 1))
      printf '  %-22s NOT READY  %-22s admin 127.0.0.1:%s  after %ss, still running: see %s\n' \
        "nexus-$n" "$addr" "$port" "$READY_TIMEOUT" "$LOGS/$n.log"
    fi
  done
  if ((pending)); then sleep 0.5; fi
done

say ""
say "NexusOne is running."
if [[ -n ${pid_of[gateway]:-} ]]; then
  gw=http://127.0.0.1:${NEXUS_PORT[gateway]}
  say "  gateway   $gw"
  say "  docs      $gw/docs"
  say "  OpenAPI   $gw/openapi.json"
fi
say "  logs      $LOGS/<name>.log"
say "Ctrl-C stops everything."

# Wait; a binary that dies on its own stops the rest (and exits 1), Ctrl-C/SIGTERM exits 0.
while :; do
  for n in "${!pid_of[@]}"; do
    if ! kill -0 "${pid_of[$n]}" 2>/dev/null; then
      wait "${pid_of[$n]}" && status=0 || status=$?
      unset "pid_of[$n]"
      rm -f "$PIDS/$n.pid"
      printf '\nrun: nexus-%s exited (status %s). Last lines of %s:\n' "$n" "$status" "$LOGS/$n.log" >&2
      tail -n 20 "$LOGS/$n.log" >&2
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
done
