#!/usr/bin/env bash
# Runs a real single-node Apache Kafka broker (KRaft, broker+controller in one
# JVM) from jars fetched from Maven Central, for the integration suite and CI.
#
#   kafka.sh fetch          download the broker jars (Maven), once per version
#   kafka.sh start [--fresh] format storage if needed, start, wait until ready
#   kafka.sh stop           SIGTERM, wait up to 30 s, then SIGKILL (idempotent)
#   kafka.sh kill           SIGKILL now (fault tests); data stays, start recovers
#   kafka.sh status         exit 0 if running and answering metadata requests
#   kafka.sh reset          stop and wipe the data directory
#   kafka.sh logs [N]       last N (default 100) lines of the broker log
#   kafka.sh java CLASS ... run a Kafka tool class on the broker's classpath,
#                           e.g. kafka.sh java org.apache.kafka.tools.TopicCommand
#                                --bootstrap-server 127.0.0.1:19092 --list
#
# Environment:
#   INLET_KAFKA_PORT             client listener port       (default 19092)
#   INLET_KAFKA_CONTROLLER_PORT  KRaft controller port      (default 19093)
#   INLET_CACHE_DIR              jars and default data root (default deploy/local/.cache)
#   INLET_KAFKA_DATA             data + run directory       (default $INLET_CACHE_DIR/kafka-data)
#   INLET_KAFKA_HEAP_OPTS        JVM heap flags             (default -Xms256m -Xmx512m)
#   INLET_KAFKA_JAVA_OPTS        extra JVM flags
#   INLET_KAFKA_START_TIMEOUT    seconds to wait for ready  (default 90)
#   INLET_KAFKA_STOP_TIMEOUT     seconds before SIGKILL     (default 30)
#   JAVA_HOME                    java to use (else `java` on PATH; needs 17+)
#
# Everything listens on 127.0.0.1 only. The data directory survives stop,
# kill and start: records written before a restart are there after it. Only
# `reset` and `start --fresh` delete it.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=jars.sh
. "$SCRIPT_DIR/jars.sh" # POM, CACHE_DIR, KAFKA_VERSION, DIST_DIR, LIBS, new_cluster_id
FETCH_STAMP="$DIST_DIR/.fetched"

DATA="$(realpath -m "${INLET_KAFKA_DATA:-$CACHE_DIR/kafka-data}")"
LOG_DIR="$DATA/kraft-logs"     # log.dirs (topic data + KRaft metadata log)
CONFIG="$DATA/server.properties"
LOG4J_CONFIG="$DATA/log4j2.xml"
PID_FILE="$DATA/kafka.pid"
OUT_FILE="$DATA/kafka.log"     # broker stdout/stderr (the log4j console)
LOCK_FILE="$DATA/.lock"

START_TIMEOUT="${INLET_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${INLET_KAFKA_STOP_TIMEOUT:-30}"

if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi

log() { echo "kafka.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Ports: the environment wins; otherwise status/stop use the ports of the
# config last written by start, and start uses the defaults.
configured_port() { # $1 = listener name
  [ -f "$CONFIG" ] || return 0
  sed -n "s/^listeners=.*$1:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p" "$CONFIG" | head -n1
}
resolve_ports() {
  PORT="${INLET_KAFKA_PORT:-}"
  CPORT="${INLET_KAFKA_CONTROLLER_PORT:-}"
  if [ "${1:-}" != start ]; then
    [ -n "$PORT" ] || PORT="$(configured_port PLAINTEXT)"
    [ -n "$CPORT" ] || CPORT="$(configured_port CONTROLLER)"
  fi
  PORT="${PORT:-19092}"
  CPORT="${CPORT:-19093}"
}

need_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found: install a JDK/JRE 17+ (apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
}

# ---------------------------------------------------------------- fetch

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

fetched() {
  [ -f "$FETCH_STAMP" ] && [ "$(cat "$FETCH_STAMP")" = "$(pom_sum)" ] \
    && [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]
}

cmd_fetch() {
  if fetched; then
    log "Kafka $KAFKA_VERSION jars already in $LIBS ($(find "$LIBS" -name "*.jar" | wc -l) jars)"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: apt-get install -y maven"
  need_java
  mkdir -p "$DIST_DIR"
  local tmp="$DIST_DIR/libs.tmp.$$"
  # An interrupted fetch of an earlier run leaves its own libs.tmp.<pid>.
  rm -rf "$DIST_DIR"/libs.tmp.*
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  local t0=$SECONDS try
  # Three tries, each bounded: one refused or stalled download (Maven's
  # own read timeout is 30 minutes) would otherwise fail or stall CI.
  # Maven 3.8 with -q still prints bare ANSI resets: strip them (pipefail
  # keeps mvn's exit status).
  # -U: Maven records an artifact a repository once answered 404 for in
  # ~/.m2 and, without -U, refuses to ask again for a day, so one
  # transient 404 would fail every later try, and every run on this machine.
  for try in 1 2 3; do
    rm -rf "$tmp"
    # shellcheck disable=SC2086 # INLET_MVN_ARGS is a list of flags
    if timeout 900 mvn -B -q -ntp -C -U -f "$POM" -Dmaven.wagon.rto=60000 \
        -Dmaven.wagon.http.retryHandler.count=3 ${INLET_MVN_ARGS:-} \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 \
        | sed 's/\x1b\[[0-9;]*m//g' >&2; then
      break
    fi
    rm -rf "$tmp"
    [ "$try" = 3 ] && die "mvn dependency:copy-dependencies failed three times (see above)"
    log "mvn failed (try $try of 3); trying again in 10 s"
    sleep 10
  done
  [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"; }
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS" || die "could not move the fetched jars into $LIBS"
  pom_sum > "$FETCH_STAMP"
  log "fetched $(find "$LIBS" -name "*.jar" | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- process helpers

pid_from_file() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

# Alive and really our broker (guards against a reused PID).
is_our_broker() { # $1 = pid
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/cmdline" ] || return 0   # no /proc: trust kill -0
  # grep reads the file itself: piped, an early exit of grep -q could
  # SIGPIPE the writer and, under pipefail, read as "not ours".
  grep -qa 'kafka\.Kafka' "/proc/$1/cmdline"
}

running_pid() {
  local pid
  pid="$(pid_from_file)" || return 1
  is_our_broker "$pid" || return 1
  echo "$pid"
}

port_open() { # $1 = port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A real Kafka protocol check, no JVM and no kcat needed: send a Metadata v1
# request (all topics) over /dev/tcp and require a response carrying our
# correlation id and a broker list with exactly one broker (a broker that is
# still fenced or catching up lists none).
#   request  = int32 size | int16 api_key=3 | int16 version=1 | int32 corr_id
#              | string client_id | array topics = null (-1: all topics)
#   response = int32 size | int32 corr_id | int32 broker_count | ...
metadata_ok() { # $1 = port
  local hex
  # shellcheck disable=SC2016 # expanded by the inner bash
  hex="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x13\x00\x03\x00\x01\x49\x4e\x4c\x54\x00\x05inlet\xff\xff\xff\xff" >&3
    head -c 12 <&3 | od -An -v -tx1
  ' _ "$1" 2>/dev/null | tr -d ' \n')" || return 1
  # bytes 4..7: correlation id 0x494e4c54 ("INLT"); bytes 8..11: broker count 1
  [ "${hex:8:8}" = "494e4c54" ] && [ "${hex:16:8}" = "00000001" ]
}

ready() { # $1 = port
  port_open "$1" && metadata_ok "$1"
}

tail_log() {
  local n="${1:-60}"
  if [ -f "$OUT_FILE" ]; then
    echo "----- last $n lines of $OUT_FILE -----" >&2
    tail -n "$n" "$OUT_FILE" >&2
    echo "-----" >&2
  else
    log "no broker log at $OUT_FILE"
  fi
}

with_lock() {
  mkdir -p "$DATA"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE"
    flock -w 120 9 || die "could not lock $LOCK_FILE (another kafka.sh running?)"
  fi
}

# ---------------------------------------------------------------- config

write_config() {
  mkdir -p "$LOG_DIR"
  cat > "$CONFIG" <<EOF
# Written by deploy/local/kafka/kafka.sh start; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$LOG_DIR

# Single node: every internal topic has one replica.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Test-friendly behaviour.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
message.max.bytes=4194304
replica.fetch.max.bytes=4194304

# Small machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
EOF
  cat > "$LOG4J_CONFIG" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by deploy/local/kafka/kafka.sh. Everything goes to stdout, which
     kafka.sh sends to kafka.log in the data directory. shutdownHook is off
     so that the broker's own shutdown (which runs in a JVM shutdown hook)
     can still log; the console appender flushes every line anyway. -->
<Configuration status="warn" shutdownHook="disable">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="stdout"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="warn"/>
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="warn"/>
  </Loggers>
</Configuration>
EOF
}

formatted() {
  [ -f "$LOG_DIR/meta.properties" ]
}

format_storage() {
  local id; id="$(new_cluster_id)"
  log "formatting $LOG_DIR (cluster id $id)"
  "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$LOG4J_CONFIG" -cp "$LIBS/*" \
    kafka.tools.StorageTool format --config "$CONFIG" --cluster-id "$id" \
    >>"$OUT_FILE" 2>&1 || { tail_log 30; die "storage format failed"; }
}

# ---------------------------------------------------------------- commands

cmd_start() {
  local fresh=0
  for a in "$@"; do
    case "$a" in
      --fresh) fresh=1 ;;
      *) die "start: unknown option $a" ;;
    esac
  done
  resolve_ports start
  need_java
  # Not "fetched || cmd_fetch": on the right of ||, set -e is off inside it.
  if ! fetched; then cmd_fetch; fi
  with_lock
  if [ "$fresh" = 1 ]; then wipe_data; fi

  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid); waiting until it answers on 127.0.0.1:$PORT"
  else
    rm -f "$PID_FILE"
    port_open "$PORT" && die "port $PORT is already in use by another process (set INLET_KAFKA_PORT)"
    port_open "$CPORT" && die "port $CPORT is already in use by another process (set INLET_KAFKA_CONTROLLER_PORT)"
    write_config
    formatted || format_storage
    {
      echo
      echo "===== kafka.sh start $(date -u +%FT%TZ): Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $CPORT) ====="
    } >>"$OUT_FILE"
    # shellcheck disable=SC2086 # the *_OPTS variables are lists of flags
    nohup "$JAVA" ${INLET_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$DATA" \
      ${INLET_KAFKA_JAVA_OPTS:-} \
      -cp "$LIBS/*" kafka.Kafka "$CONFIG" >>"$OUT_FILE" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" > "$PID_FILE"
    log "started Kafka $KAFKA_VERSION (pid $pid), log $OUT_FILE"
  fi

  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    # kill -0, not is_our_broker: right after the fork the child may not have
    # exec'd java yet.
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log 80
      rm -f "$PID_FILE"
      die "broker process $pid exited during startup"
    fi
    if ready "$PORT"; then
      log "ready on 127.0.0.1:$PORT after $((SECONDS - t0)) s (pid $pid, data $LOG_DIR)"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail_log 80
      die "broker not ready on 127.0.0.1:$PORT within ${START_TIMEOUT} s (still running as pid $pid; run kafka.sh stop)"
    fi
    sleep 0.5
  done
}

wait_gone() { # $1 = pid, $2 = seconds; returns 1 if still alive
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
  return 0
}

cmd_stop() {
  [ -d "$DATA" ] || { log "not running (no $DATA)"; return 0; }
  with_lock
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid (SIGTERM, up to ${STOP_TIMEOUT} s)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
    log "still alive after ${STOP_TIMEOUT} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_kill() {
  [ -d "$DATA" ] || { log "not running (no $DATA)"; return 0; }
  with_lock
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
  rm -f "$PID_FILE"
  log "killed pid $pid (SIGKILL)"
}

cmd_status() {
  resolve_ports status
  local pid
  if ! pid="$(running_pid)"; then
    echo "kafka: not running"
    return 1
  fi
  if ready "$PORT"; then
    echo "kafka: running (pid $pid) and answering on 127.0.0.1:$PORT"
    return 0
  fi
  echo "kafka: process $pid alive but not answering on 127.0.0.1:$PORT"
  return 1
}

wipe_data() {
  local pid
  if pid="$(running_pid)"; then
    die "refusing to wipe data while the broker runs (pid $pid): stop it first"
  fi
  log "wiping $LOG_DIR"
  rm -rf "$LOG_DIR" "$CONFIG"
}

cmd_reset() {
  cmd_stop
  wipe_data
}

cmd_java() {
  [ $# -ge 1 ] || die "usage: kafka.sh java CLASS [ARGS...]"
  need_java
  # Not "fetched || cmd_fetch": on the right of ||, set -e is off inside it.
  if ! fetched; then cmd_fetch; fi
  # Tools log warnings and errors to stderr only.
  local cfg; cfg="$(mktemp)"
  cat > "$cfg" <<'EOF2'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders><Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="%p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="warn"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
EOF2
  local rc=0
  "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$cfg" -cp "$LIBS/*" "$@" || rc=$?
  rm -f "$cfg"
  return "$rc"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  fetch)  cmd_fetch ;;
  start)  cmd_start "$@" ;;
  stop)   cmd_stop ;;
  kill)   cmd_kill ;;
  status) cmd_status ;;
  reset)  cmd_reset ;;
  logs)   tail -n "${1:-100}" "$OUT_FILE" ;;
  java)   cmd_java "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
