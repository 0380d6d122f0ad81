# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are used by the scripts that source this file.)
# Sourced by the scripts in deploy/local (not run on its own).
#
# The one list of NexusOne binaries and their default ports (DESIGN.md §10). Add a service here
# and run.sh / stack.sh / the Makefile pick it up; binaries not built yet are skipped.
#   name  main-port  admin-port     (gateway: public HTTP port; the others: gRPC port)
NEXUS_SERVICE_TABLE=(
  "gateway        8080  9100"
  "auth          50051  9101"
  "subscriptions 50052  9102"
  "content       50053  9103"
  "video         50054  9104"
  "messaging     50055  9105"
  "ads           50056  9106"
  "commerce      50057  9107"
  "analytics     50058  9108"
)

# NEXUS_PORT_BASE, when set, replaces the table's ports by a block from it (the i-th row gets
# BASE+2i and BASE+2i+1), so a second stack (the contract test, deploy/local/contract.sh) runs
# beside `make run`; below 32768 it also stays clear of the kernel's ephemeral ports.
NEXUS_PORT_BASE=${NEXUS_PORT_BASE:-}

NEXUS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NEXUS_LOCAL=${NEXUS_LOCAL:-$NEXUS_ROOT/.local}
# Where cargo put the binaries: CARGO_TARGET_DIR when the build uses a shared target directory.
NEXUS_BIN_DIR=${NEXUS_BIN_DIR:-${CARGO_TARGET_DIR:-$NEXUS_ROOT/target}/debug}

declare -A NEXUS_PORT=() NEXUS_ADMIN_PORT=()
NEXUS_NAMES=()
for _row in "${NEXUS_SERVICE_TABLE[@]}"; do
  read -r _name _port _admin <<<"$_row"
  NEXUS_NAMES+=("$_name")
  if [[ -n $NEXUS_PORT_BASE ]]; then
    _port=$((NEXUS_PORT_BASE + 2 * (${#NEXUS_NAMES[@]} - 1)))
    _admin=$((_port + 1))
  fi
  NEXUS_PORT[$_name]=$_port
  NEXUS_ADMIN_PORT[$_name]=$_admin
done
unset _row _name _port _admin

# Names whose binary exists in $NEXUS_BIN_DIR, in table order.
nexus_built_names() {
  local name
  for name in "${NEXUS_NAMES[@]}"; do
    if [[ -x $NEXUS_BIN_DIR/nexus-$name ]]; then printf '%s\n' "$name"; fi
  done
}

# "host port" of a URL such as postgres://user:pw@host:5432/db?x=y or nats://host:4222.
url_host_port() {
  local url=$1 default_port=$2 rest host port
  rest=${url#*://}
  rest=${rest%%[/?]*}
  rest=${rest##*@}
  if [[ $rest == \[* ]]; then # [::1]:5432
    host=${rest%%]*}
    host=${host#[}
    port=${rest##*]}
  else
    host=${rest%%:*}
    port=${rest#"$host"}
  fi
  port=${port#:}
  printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$default_port}"
}

# The database name in a postgres URL ("nexus" if none).
url_db_name() {
  local rest=${1#*://}
  if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=; fi
  rest=${rest%%\?*}
  printf '%s\n' "${rest:-nexus}"
}

# Whether a host names this machine (so a project-local server may be started for it).
is_local_host() {
  case $1 in
    127.* | localhost | ::1) return 0 ;;
    *) return 1 ;;
  esac
}

# The admin (migration) Postgres URL from the environment, a *_FILE secret, or the default.
nexus_admin_db_url() {
  if [[ -n ${NEXUS_DATABASE__ADMIN_URL_FILE:-} && -r ${NEXUS_DATABASE__ADMIN_URL_FILE} ]]; then
    head -n1 "$NEXUS_DATABASE__ADMIN_URL_FILE"
  else
    printf '%s\n' "${NEXUS_DATABASE__ADMIN_URL:-postgres://postgres@127.0.0.1:5432/nexus}"
  fi
}

nexus_nats_url() {
  printf '%s\n' "${NEXUS_NATS__URL:-nats://127.0.0.1:4222}"
}
