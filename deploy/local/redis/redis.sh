#!/usr/bin/env bash
# Runs Debian's redis-server on loopback for the integration suite and CI.
#
#   redis.sh start    start (daemonized) and wait for PONG; no-op if running
#   redis.sh stop     SIGTERM via the pidfile, wait, then SIGKILL (idempotent)
#   redis.sh kill     SIGKILL now (fault tests)
#   redis.sh status   exit 0 if running and answering PING
#   redis.sh logs [N] last N (default 100) lines of the server log
#
# Environment:
#   INLET_REDIS_PORT           port                      (default 16379)
#   INLET_CACHE_DIR            default run directory root (default deploy/local/.cache)
#   INLET_REDIS_DIR            pidfile, log, working dir (default $INLET_CACHE_DIR/redis-$PORT)
#   INLET_REDIS_START_TIMEOUT  seconds to wait for PONG  (default 20)
#   INLET_REDIS_STOP_TIMEOUT   seconds before SIGKILL    (default 10)
#
# Nothing is persisted (--save '' --appendonly no): a restart starts empty.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../../.." && pwd -P)"
CACHE_DIR="$(realpath -m "${INLET_CACHE_DIR:-$REPO_ROOT/deploy/local/.cache}")"
PORT="${INLET_REDIS_PORT:-16379}"
RUN_DIR="$(realpath -m "${INLET_REDIS_DIR:-$CACHE_DIR/redis-$PORT}")"
PID_FILE="$RUN_DIR/redis.pid"
LOG_FILE="$RUN_DIR/redis.log"
START_TIMEOUT="${INLET_REDIS_START_TIMEOUT:-20}"
STOP_TIMEOUT="${INLET_REDIS_STOP_TIMEOUT:-10}"

log() { echo "redis.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# PING over redis-cli, or over bash's /dev/tcp where redis-cli is missing.
ping_ok() {
  local reply
  if command -v redis-cli >/dev/null 2>&1; then
    reply="$(timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" || return 1
    [ "$reply" = "PONG" ]
  else
    # shellcheck disable=SC2016 # expanded by the inner bash
    reply="$(timeout 3 bash -c '
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf "PING\r\n" >&3
      head -c 7 <&3
    ' _ "$PORT" 2>/dev/null)" || return 1
    [ "${reply%$'\r'*}" = "+PONG" ]
  fi
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/comm" ]; then
    grep -q '^redis' "/proc/$pid/comm" || return 1   # PID reused by something else
  fi
  echo "$pid"
}

tail_log() {
  if [ -f "$LOG_FILE" ]; then
    echo "----- last 30 lines of $LOG_FILE -----" >&2
    tail -n 30 "$LOG_FILE" >&2
    echo "-----" >&2
  fi
}

wait_gone() { # $1 = pid, $2 = seconds
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

cmd_start() {
  command -v redis-server >/dev/null 2>&1 \
    || die "redis-server not found: install it with  apt-get install -y redis-server"
  mkdir -p "$RUN_DIR"
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
  else
    rm -f "$PID_FILE"
    port_open && die "port $PORT is already in use by another process (set INLET_REDIS_PORT)"
    redis-server --port "$PORT" --bind 127.0.0.1 --daemonize yes \
      --save '' --appendonly no \
      --pidfile "$PID_FILE" --logfile "$LOG_FILE" --dir "$RUN_DIR" \
      || { tail_log; die "redis-server failed to start"; }
  fi
  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ping_ok && pid="$(running_pid)"; then
      log "ready on 127.0.0.1:$PORT after $((SECONDS - t0)) s (pid $pid, $(redis-server --version | grep -o 'v=[0-9.]*'))"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail_log
      die "redis not answering PING on 127.0.0.1:$PORT within ${START_TIMEOUT} s"
    fi
    sleep 0.1
  done
}

cmd_stop() { # $1 = signal
  local sig="${1:-TERM}" pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  kill -"$sig" "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
    log "still alive after ${STOP_TIMEOUT} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || die "pid $pid survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  log "stopped pid $pid (SIG$sig)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && ping_ok; then
    echo "redis: running (pid $pid) and answering on 127.0.0.1:$PORT"
    return 0
  fi
  echo "redis: not running on 127.0.0.1:$PORT"
  return 1
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  start)  cmd_start ;;
  stop)   cmd_stop TERM ;;
  kill)   cmd_stop KILL ;;
  status) cmd_status ;;
  logs)   tail -n "${1:-100}" "$LOG_FILE" ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
