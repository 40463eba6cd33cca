#!/usr/bin/env bash
# Install (when missing) and start the services the tests need, idempotently.
# Redis: redis-server from Debian's packages, loopback only, no persistence.
# Prints the environment the tests read (SIA_TEST_REDIS_URL) on its last line.
set -euo pipefail

REDIS_PORT="${SIA_TEST_REDIS_PORT:-6379}"

need_apt_update=1
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "services: $* missing and not root: install it (apt-get install -y $*)" >&2
    exit 1
  fi
  if [ "$need_apt_update" = 1 ]; then
    apt-get update -qq >/dev/null
    need_apt_update=0
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "services: installing redis-server" >&2
  apt_install redis-server
fi
if ! redis_up; then
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --logfile /tmp/sia-redis.log
  for _ in $(seq 1 50); do
    redis_up && break
    sleep 0.1
  done
  redis_up || { echo "services: redis-server did not answer on $REDIS_PORT" >&2; exit 1; }
fi
echo "services: redis ready on 127.0.0.1:$REDIS_PORT" >&2
echo "SIA_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/15"
