#!/usr/bin/env bash
# Install (when missing) and start the services the tests need, idempotently:
# - Redis: redis-server from Debian's packages, loopback only, no persistence.
# - Kafka 3.9.1: single-node KRaft (broker + controller), jars from Maven Central cached in
#   ~/.cache/sia/kafka-3.9.1/lib, config in scripts/kafka/, data in /tmp/sia-kafka,
#   log in /tmp/sia-kafka.log, pid in /tmp/sia-kafka/kafka.pid. The broker's data is
#   scratch, like Redis's: a cold start (no broker of ours running) formats an empty
#   /tmp/sia-kafka/data. Tests create topics of their own on every run, and a data dir
#   left by earlier runs (thousands of partitions, unflushed after a kill) made the
#   broker take over a minute to load before it answered.
# - PostgreSQL from Debian's packages: role `sia` (password `sia`), database `sia_test`.
# - Chromium from Debian's packages, for the console's browser tests (Playwright drives it
#   by its path; `playwright install` is never needed). Not a server: checked, not started.
# A service that already answers is left alone. Progress goes to stderr; stdout ends with
# the environment the tests read, one SIA_TEST_*=value line per service.
#
# `scripts/services.sh stop` stops the Kafka broker this script started (by its pid file).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

REDIS_PORT="${SIA_TEST_REDIS_PORT:-6379}"
KAFKA_VERSION=3.9.1
KAFKA_BOOTSTRAP=127.0.0.1:19092
KAFKA_HOME="${SIA_KAFKA_HOME:-$HOME/.cache/sia/kafka-$KAFKA_VERSION}"
KAFKA_RUN=/tmp/sia-kafka
KAFKA_PID="$KAFKA_RUN/kafka.pid"
KAFKA_LOG=/tmp/sia-kafka.log
KAFKA_OUT=/tmp/sia-kafka.out
PG_PORT=5432

say() { echo "services: $*" >&2; }
die() { say "$*"; exit 1; }

need_apt_update=1
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    die "$* missing and not root: install it (apt-get install -y $*)"
  fi
  if [ "$need_apt_update" = 1 ]; then
    apt-get update -qq >/dev/null
    need_apt_update=0
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Kafka ------------------------------------------------------------------------------

python_bin() {
  if [ -x "$root/.venv/bin/python" ]; then echo "$root/.venv/bin/python"; else echo python3; fi
}

# does a broker answer? ($1: seconds to keep trying, $2: a pid whose death ends the wait)
kafka_up() {
  "$(python_bin)" "$here/kafka/ready.py" "$KAFKA_BOOTSTRAP" --wait "${1:-0}" ${2:+--pid "$2"}
}

# the pid in the pid file, when it is still our broker
kafka_pid() {
  [ -f "$KAFKA_PID" ] || return 1
  local pid
  pid="$(cat "$KAFKA_PID")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' && echo "$pid"
}

kafka_fetch() {
  [ -d "$KAFKA_HOME/lib" ] && return 0
  command -v mvn >/dev/null 2>&1 || apt_install maven
  say "fetching Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME/lib"
  mkdir -p "$KAFKA_HOME"
  local tmp
  tmp="$(mktemp -d "$KAFKA_HOME/download.XXXXXX")"
  cp "$here/kafka/pom.xml" "$tmp/pom.xml"
  if ! mvn -B -q -f "$tmp/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp/lib" >"$tmp/mvn.log" 2>&1; then
    tail -n 30 "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "downloading Kafka's jars failed"
  fi
  # another run may have finished first: keep its copy
  mv -T "$tmp/lib" "$KAFKA_HOME/lib" 2>/dev/null || true
  rm -rf "$tmp"
  [ -d "$KAFKA_HOME/lib" ] || die "no $KAFKA_HOME/lib after the download"
}

kafka_failed() {
  say "$1; the end of its logs ($KAFKA_LOG, $KAFKA_OUT):"
  tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
  tail -n 20 "$KAFKA_OUT" >&2 2>/dev/null || true
  exit 1
}

kafka_start() {
  "$(python_bin)" -c "import aiokafka" 2>/dev/null \
    || die "$(python_bin) cannot import aiokafka: install SIA first (pip install -e '.[test]')"
  if kafka_up; then
    say "kafka already answers on $KAFKA_BOOTSTRAP"
    return 0
  fi
  local pid
  if pid="$(kafka_pid)"; then
    say "kafka (pid $pid) is starting; waiting for it"
  else
    command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
    kafka_fetch
    if [ -d "$KAFKA_RUN/data" ]; then
      say "kafka is not running: starting it from an empty $KAFKA_RUN/data (scratch data)"
      rm -rf "$KAFKA_RUN/data"
    fi
    mkdir -p "$KAFKA_RUN"
    local classpath="$KAFKA_HOME/lib/*"
    if [ ! -f "$KAFKA_RUN/data/meta.properties" ]; then
      local cluster
      cluster="$(java -cp "$classpath" -Dlog4j.configuration="file:$here/kafka/log4j.properties" \
        kafka.tools.StorageTool random-uuid 2>>"$KAFKA_OUT")"
      java -cp "$classpath" -Dlog4j.configuration="file:$here/kafka/log4j.properties" \
        kafka.tools.StorageTool format -t "$cluster" -c "$here/kafka/server.properties" \
        >>"$KAFKA_OUT" 2>&1 || die "formatting $KAFKA_RUN/data failed (see $KAFKA_OUT)"
    fi
    say "starting kafka on $KAFKA_BOOTSTRAP (log $KAFKA_LOG)"
    # its own session, so the broker outlives this script; the pid written is java's
    # shellcheck disable=SC2016  # $$ and $1 belong to the inner shell
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
      java -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$here/kafka/log4j.properties" \
      -cp "$classpath" kafka.Kafka "$here/kafka/server.properties" \
      >>"$KAFKA_OUT" 2>&1 </dev/null &
    for _ in $(seq 1 50); do
      pid="$(kafka_pid)" && break
      sleep 0.1
    done
    [ -n "$pid" ] || kafka_failed "kafka exited at once"
  fi
  kafka_up 180 "$pid" || kafka_failed "kafka did not answer on $KAFKA_BOOTSTRAP within 180 s"
  say "kafka ready on $KAFKA_BOOTSTRAP"
}

kafka_stop() {
  local pid
  if ! pid="$(kafka_pid)"; then
    say "no kafka started by this script is running"
    rm -f "$KAFKA_PID"
    return 0
  fi
  say "stopping kafka (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "kafka (pid $pid) still running after 30 s: killing it"
    kill -9 "$pid"
  fi
  rm -f "$KAFKA_PID"
}

# --- PostgreSQL -------------------------------------------------------------------------

pg_up() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
as_postgres() { (cd /tmp && runuser -u postgres -- "$@"); }

postgres_start() {
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "installing postgresql"
    apt_install postgresql
  fi
  local version
  version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' \
    | sort -V | tail -n 1)"
  if ! pg_up; then
    [ "$(id -u)" -eq 0 ] || die "postgresql is not running and starting it needs root"
    if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
      pg_createcluster "$version" main >&2
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
    for _ in $(seq 1 100); do
      pg_up && break
      sleep 0.1
    done
    pg_up || die "postgresql $version did not answer on 127.0.0.1:$PG_PORT"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    as_postgres psql -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sia') THEN
        CREATE ROLE sia LOGIN PASSWORD 'sia';
      END IF; END \$\$;" >&2
    if [ -z "$(as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'sia_test'")" ]
    then
      as_postgres createdb -O sia sia_test
    fi
  fi
  say "postgresql $version ready on 127.0.0.1:$PG_PORT"
}

# --- Redis ------------------------------------------------------------------------------

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

redis_start() {
  if ! command -v redis-server >/dev/null 2>&1; then
    say "installing redis-server"
    apt_install redis-server
  fi
  if ! redis_up; then
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
      --appendonly no --logfile /tmp/sia-redis.log
    for _ in $(seq 1 50); do
      redis_up && break
      sleep 0.1
    done
    redis_up || die "redis-server did not answer on $REDIS_PORT"
  fi
  say "redis ready on 127.0.0.1:$REDIS_PORT"
}

# --- Chromium ---------------------------------------------------------------------------

CHROMIUM="${SIA_CHROMIUM:-/usr/bin/chromium}"

chromium_check() {
  if [ ! -x "$CHROMIUM" ]; then
    say "installing chromium"
    apt_install chromium
  fi
  [ -x "$CHROMIUM" ] || die "no chromium at $CHROMIUM after installing it"
  local version
  version="$("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null | head -n 1)" \
    || die "$CHROMIUM does not run"
  say "chromium ready: ${version:-$CHROMIUM}"
}

case "${1:-start}" in
  start)
    redis_start
    postgres_start
    kafka_start
    chromium_check
    echo "SIA_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/15"
    echo "SIA_TEST_KAFKA_BROKER=kafka://$KAFKA_BOOTSTRAP"
    echo "SIA_TEST_DATABASE_URL=postgresql+psycopg://sia:sia@127.0.0.1:$PG_PORT/sia_test"
    echo "SIA_TEST_CHROMIUM=$CHROMIUM"
    ;;
  stop)
    kafka_stop
    ;;
  *)
    die "usage: $0 [start|stop]"
    ;;
esac
