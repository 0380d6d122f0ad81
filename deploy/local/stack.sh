#!/usr/bin/env bash
# Local Postgres and NATS (JetStream) for `make run` / `make test`.
#
#   stack.sh up      make both answer at the configured URLs: reuse running servers, else start
#                    project-local ones under .local/ from the installed binaries
#   stack.sh down    stop the project-local servers this script started (never a system one)
#   stack.sh status  say what answers where
#   stack.sh clean   down, then delete .local (data, logs) and any data folder kept outside it
#
# Addresses come from NEXUS_DATABASE__ADMIN_URL and NEXUS_NATS__URL (defaults
# postgres://postgres@127.0.0.1:5432/nexus and nats://127.0.0.1:4222).
# NEXUS_STACK_TIMEOUT (seconds, default 30) bounds each wait.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/services.sh
. "$here/services.sh"

TIMEOUT=${NEXUS_STACK_TIMEOUT:-30}
PG_URL=$(nexus_admin_db_url)
NATS_URL=$(nexus_nats_url)
read -r PG_HOST PG_PORT < <(url_host_port "$PG_URL" 5432)
read -r NATS_HOST NATS_PORT < <(url_host_port "$NATS_URL" 4222)

PG_LOCATION_FILE=$NEXUS_LOCAL/pg.location # set when the data folder had to live outside .local
NATS_PID_FILE=$NEXUS_LOCAL/nats.pid
NATS_LOG=$NEXUS_LOCAL/nats.log

say() { printf '%s\n' "$*"; }
die() {
  printf 'stack: %s\n' "$*" >&2
  exit 1
}

# --------------------------------------------------------------------------------------------
# Postgres

# Folder of the Postgres server binaries: NEXUS_PG_BINDIR, else the version matching an existing
# project-local cluster, else the newest /usr/lib/postgresql/*/bin, else initdb on PATH.
pg_bindir() {
  local data dirs d
  if [[ -n ${NEXUS_PG_BINDIR:-} ]]; then
    printf '%s\n' "$NEXUS_PG_BINDIR"
    return
  fi
  data=$(pg_datadir)
  if [[ -r $data/PG_VERSION && -x /usr/lib/postgresql/$(<"$data/PG_VERSION")/bin/pg_ctl ]]; then
    printf '%s\n' "/usr/lib/postgresql/$(<"$data/PG_VERSION")/bin"
    return
  fi
  shopt -s nullglob
  dirs=(/usr/lib/postgresql/*/bin)
  shopt -u nullglob
  if ((${#dirs[@]})); then
    while read -r d; do
      if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
        printf '%s\n' "$d"
        return
      fi
    done < <(printf '%s\n' "${dirs[@]}" | sort -V -r)
  fi
  if d=$(command -v initdb 2>/dev/null); then
    d=$(dirname "$(readlink -f "$d")")
    if [[ -x $d/pg_ctl ]]; then
      printf '%s\n' "$d"
      return
    fi
  fi
  return 1
}

pg_datadir() {
  if [[ -s $PG_LOCATION_FILE ]]; then head -n1 "$PG_LOCATION_FILE"; else printf '%s\n' "$NEXUS_LOCAL/pg"; fi
}

pg_logfile() { printf '%s.log\n' "$(pg_datadir)"; }

pg_answers() {
  local isready
  if isready=$(command -v pg_isready 2>/dev/null) || { isready=$(pg_bindir 2>/dev/null)/pg_isready && [[ -x $isready ]]; }; then
    "$isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
  else
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$PG_HOST" "$PG_PORT" 2>/dev/null
  fi
}

# Postgres refuses to run as root: as root, run it as `postgres` (or a user made for it).
pg_os_user() {
  if ((EUID != 0)); then
    id -un
  elif id -u postgres >/dev/null 2>&1; then
    printf 'postgres\n'
  else
    if ! id -u nexus-pg >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nexus-pg
    fi
    printf 'nexus-pg\n'
  fi
}

as_pg_user() {
  local user=$1
  shift
  # From /: the checkout may be out of that user's reach.
  if [[ $user == "$(id -un)" ]]; then
    (cd / && "$@" 9>&-)
  else
    (cd / && runuser -u "$user" -- "$@" 9>&-)
  fi
}

# The project-local cluster is running (whatever answers on the port).
pg_local_running() {
  local bindir data
  data=$(pg_datadir)
  [[ -f $data/PG_VERSION ]] || return 1
  bindir=$(pg_bindir 2>/dev/null) || return 1
  as_pg_user "$(stat -c %U "$data")" "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

pg_up() {
  if pg_answers; then
    if pg_local_running; then say "postgres $PG_HOST:$PG_PORT: reused (project-local, $(pg_datadir))"; else say "postgres $PG_HOST:$PG_PORT: reused"; fi
    return
  fi
  is_local_host "$PG_HOST" ||
    die "postgres at $PG_HOST:$PG_PORT does not answer, and it is not this machine: start it or fix NEXUS_DATABASE__ADMIN_URL"

  local bindir user data log listen
  bindir=$(pg_bindir) ||
    die "postgres does not answer at $PG_HOST:$PG_PORT and no Postgres server binaries are installed. Install them with:
    apt-get update && apt-get install -y postgresql-15
(or start a Postgres server there yourself)"
  user=$(pg_os_user)
  data=$(pg_datadir)
  mkdir -p "$NEXUS_LOCAL"

  if [[ ! -f $data/PG_VERSION ]]; then
    mkdir -p "$data"
    chmod 700 "$data"
    [[ $user == "$(id -un)" ]] || chown "$user:" "$data"
    # The server's user must reach the folder; a checkout under /root is out of its reach.
    if ! as_pg_user "$user" test -w "$data"; then
      rmdir "$data"
      data=/var/tmp/nexus-pg-$(printf '%s' "$NEXUS_ROOT" | sha1sum | cut -c1-12)/pg
      mkdir -p "$data"
      chmod 700 "$data"
      chown "$user:" "$data" "$(dirname "$data")"
      printf '%s\n' "$data" >"$PG_LOCATION_FILE"
    fi
    if ! as_pg_user "$user" "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale \
      >"$NEXUS_LOCAL/pg.initdb.log" 2>&1; then
      cat "$NEXUS_LOCAL/pg.initdb.log" >&2
      die "initdb failed (log above: $NEXUS_LOCAL/pg.initdb.log)"
    fi
    case $PG_HOST in localhost) listen=localhost ;; *) listen=$PG_HOST ;; esac
    # A throwaway development/test cluster: durability traded for speed.
    cat >>"$data/postgresql.conf" <<EOF

# --- NexusOne project-local cluster (deploy/local/stack.sh) ---
listen_addresses = '$listen'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi

  log=$(pg_logfile)
  if [[ ! -e $log ]]; then
    touch "$log"
    [[ $user == "$(id -un)" ]] || chown "$user:" "$log"
  fi
  user=$(stat -c %U "$data")
  if ! as_pg_user "$user" "$bindir/pg_ctl" -D "$data" -l "$log" -w -t "$TIMEOUT" start >/dev/null 2>&1; then
    tail -n 20 "$log" >&2 || true
    die "postgres did not start (log: $log)"
  fi
  wait_for pg_answers || {
    tail -n 20 "$log" >&2 || true
    die "postgres started but does not answer at $PG_HOST:$PG_PORT within ${TIMEOUT}s (log: $log)"
  }
  say "postgres $PG_HOST:$PG_PORT: started (project-local, $data)"
}

pg_down() {
  local data bindir
  data=$(pg_datadir)
  if ! pg_local_running; then
    say "postgres: no project-local server running"
    return
  fi
  bindir=$(pg_bindir)
  as_pg_user "$(stat -c %U "$data")" "$bindir/pg_ctl" -D "$data" -m fast -w -t "$TIMEOUT" stop >/dev/null
  say "postgres: stopped (project-local, $data)"
}

# --------------------------------------------------------------------------------------------
# NATS

# The server's INFO line, if something NATS-like answers.
nats_info() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r line <&3 && printf "%s\n" "$line"' \
    _ "$NATS_HOST" "$NATS_PORT" 2>/dev/null
}

nats_answers() {
  local info
  info=$(nats_info) && [[ $info == INFO* ]]
}

nats_bin() {
  local b
  for b in "${NEXUS_NATS_SERVER:-}" "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
    if [[ -n $b && -x $b ]]; then
      printf '%s\n' "$b"
      return
    fi
  done
  return 1
}

nats_local_pid() {
  local pid
  [[ -s $NATS_PID_FILE ]] || return 1
  pid=$(<"$NATS_PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == nats-server* ]] || return 1
  printf '%s\n' "$pid"
}

nats_check_jetstream() {
  local info
  info=$(nats_info) || return 0
  if [[ $info != *'"jetstream":true'* ]]; then
    printf 'stack: warning: NATS at %s:%s answers but reports no JetStream; the services need it (nats-server -js)\n' \
      "$NATS_HOST" "$NATS_PORT" >&2
  fi
}

nats_up() {
  if nats_answers; then
    if nats_local_pid >/dev/null; then say "nats $NATS_HOST:$NATS_PORT: reused (project-local)"; else say "nats $NATS_HOST:$NATS_PORT: reused"; fi
    nats_check_jetstream
    return
  fi
  is_local_host "$NATS_HOST" ||
    die "NATS at $NATS_HOST:$NATS_PORT does not answer, and it is not this machine: start it or fix NEXUS_NATS__URL"

  local bin listen pid
  if ! bin=$(nats_bin); then
    if [[ ${CI:-} == true ]] && ((EUID == 0)) && command -v apt-get >/dev/null; then
      say "nats-server missing; installing it (CI)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2
      # The package may have started its own server.
      if wait_for_quick nats_answers; then
        say "nats $NATS_HOST:$NATS_PORT: reused (just installed)"
        nats_check_jetstream
        return
      fi
      bin=$(nats_bin) || die "nats-server still missing after apt-get install"
    else
      die "NATS does not answer at $NATS_HOST:$NATS_PORT and nats-server is not installed. Install it with:
    apt-get update && apt-get install -y nats-server
(or start a NATS server with JetStream there yourself)"
    fi
  fi

  case $NATS_HOST in localhost) listen=127.0.0.1 ;; *) listen=$NATS_HOST ;; esac
  mkdir -p "$NEXUS_LOCAL/nats"
  # setsid: the server outlives this script and ignores the terminal's Ctrl-C.
  setsid "$bin" -js -sd "$NEXUS_LOCAL/nats" -p "$NATS_PORT" -a "$listen" \
    </dev/null >>"$NATS_LOG" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$NATS_PID_FILE"
  if ! wait_for nats_answers; then
    tail -n 20 "$NATS_LOG" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$NATS_PID_FILE"
    die "nats-server did not answer at $NATS_HOST:$NATS_PORT within ${TIMEOUT}s (log: $NATS_LOG)"
  fi
  nats_check_jetstream
  say "nats $NATS_HOST:$NATS_PORT: started (project-local, pid $pid, store $NEXUS_LOCAL/nats)"
}

nats_down() {
  local pid i
  if ! pid=$(nats_local_pid); then
    rm -f "$NATS_PID_FILE"
    say "nats: no project-local server running"
    return
  fi
  kill -TERM "$pid"
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$NATS_PID_FILE"
  say "nats: stopped (project-local, pid $pid)"
}

# --------------------------------------------------------------------------------------------

wait_for() { # check command
  local i
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    if "$1"; then return 0; fi
    sleep 0.25
  done
  return 1
}

wait_for_quick() {
  local i
  for ((i = 0; i < 20; i++)); do
    if "$1"; then return 0; fi
    sleep 0.25
  done
  return 1
}

status() {
  local rc=0 where
  if pg_answers; then
    if pg_local_running; then where="project-local, $(pg_datadir)"; else where=external; fi
    say "postgres $PG_HOST:$PG_PORT: up ($where)"
  else
    say "postgres $PG_HOST:$PG_PORT: down"
    rc=1
  fi
  if nats_answers; then
    if nats_local_pid >/dev/null; then where="project-local, pid $(nats_local_pid)"; else where=external; fi
    say "nats $NATS_HOST:$NATS_PORT: up ($where)"
  else
    say "nats $NATS_HOST:$NATS_PORT: down"
    rc=1
  fi
  return "$rc"
}

# One `up`/`down` at a time (make run and make test may race). Servers started while it is held
# get `9>&-` so they do not keep the lock.
lock() {
  mkdir -p "$NEXUS_LOCAL"
  if command -v flock >/dev/null; then
    exec 9>"$NEXUS_LOCAL/stack.lock"
    flock -w "$((TIMEOUT * 3))" 9 || die "another stack.sh holds $NEXUS_LOCAL/stack.lock"
  fi
}

case ${1:-} in
  up)
    lock
    pg_up
    nats_up
    ;;
  down)
    lock
    pg_down
    nats_down
    ;;
  status) status ;;
  clean)
    lock
    pg_down
    nats_down
    if [[ -s $PG_LOCATION_FILE ]]; then
      rm -rf "$(dirname "$(pg_datadir)")"
    fi
    exec 9>&-
    rm -rf "$NEXUS_LOCAL"
    say "removed $NEXUS_LOCAL"
    ;;
  *)
    printf 'usage: %s up|down|status|clean\n' "$0" >&2
    exit 2
    ;;
esac
