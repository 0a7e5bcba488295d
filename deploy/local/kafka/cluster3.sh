#!/usr/bin/env bash
# Test-only: a KRaft cluster of three brokers (nodes 1..3) and three
# dedicated controllers (nodes 4..6) on loopback, for durability drills
# (replication 3, min.insync.replicas 2): killing two brokers keeps the
# controller quorum, so the ISR shrinks below min.insync.replicas as in
# production. Reuses the jars kafka.sh fetches.
#
#   cluster3.sh start [--fresh]   start every node not running, wait for the brokers
#   cluster3.sh start-node N      start node N (after a kill)
#   cluster3.sh kill N            SIGKILL node N
#   cluster3.sh stop              SIGTERM every node, SIGKILL after 30 s
#   cluster3.sh brokers           print the bootstrap list
#
# Environment: INLET_CLUSTER3_BASE_PORT (default 26092): node N listens on
# BASE+N-1 (brokers: clients; controllers: the controller listener).
# INLET_CLUSTER3_DATA (default ${INLET_CACHE_DIR:-deploy/local/.cache}/cluster3),
# INLET_KAFKA_HEAP_OPTS (default -Xms128m -Xmx384m).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=jars.sh
. "$SCRIPT_DIR/jars.sh" # CACHE_DIR, KAFKA_VERSION, LIBS, new_cluster_id
DATA="$(realpath -m "${INLET_CLUSTER3_DATA:-$CACHE_DIR/cluster3}")"
BASE="${INLET_CLUSTER3_BASE_PORT:-26092}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { echo "cluster3.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port() { echo $((BASE + $1 - 1)); }
voters() { local v="" n; for n in 4 5 6; do v="$v${v:+,}$n@127.0.0.1:$(port "$n")"; done; echo "$v"; }
brokers() { local b="" n; for n in 1 2 3; do b="$b${b:+,}127.0.0.1:$(port "$n")"; done; echo "$b"; }

write_config() { # $1 = node
  local d="$DATA/node$1"
  mkdir -p "$d/logs"
  if [ "$1" -ge 4 ]; then
    cat > "$d/server.properties" <<CFG
process.roles=controller
node.id=$1
controller.quorum.voters=$(voters)
listeners=CONTROLLER://127.0.0.1:$(port "$1")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$d/logs
CFG
  else
    cat > "$d/server.properties" <<CFG
process.roles=broker
node.id=$1
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(port "$1")
advertised.listeners=PLAINTEXT://127.0.0.1:$(port "$1")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/logs
CFG
  fi
  cat >> "$d/server.properties" <<CFG
num.partitions=1
default.replication.factor=${INLET_CLUSTER3_DEFAULT_RF:-3}
min.insync.replicas=${INLET_CLUSTER3_DEFAULT_MIN_ISR:-2}
offsets.topic.replication.factor=3
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
unclean.leader.election.enable=false
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
CFG
  cat > "$d/log4j2.xml" <<'X'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn" shutdownHook="disable">
  <Appenders><Console name="stdout" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="info"><AppenderRef ref="stdout"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="warn"/></Loggers>
</Configuration>
X
}

pid_of() { local f="$DATA/node$1/kafka.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }

start_node() { # $1 = node
  local d="$DATA/node$1"
  if pid_of "$1" >/dev/null; then log "node $1 already running"; return 0; fi
  write_config "$1"
  if [ ! -f "$d/logs/meta.properties" ]; then
    "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$d/log4j2.xml" -cp "$LIBS/*" \
      kafka.tools.StorageTool format --config "$d/server.properties" --cluster-id "$(cat "$DATA/cluster.id")" \
      >>"$d/kafka.log" 2>&1 || die "format of node $1 failed (see $d/kafka.log)"
  fi
  # shellcheck disable=SC2086
  local heap="${INLET_KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"
  [ "$1" -ge 4 ] && heap="-Xms64m -Xmx192m"
  nohup "$JAVA" $heap -server -XX:+UseG1GC \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$d/log4j2.xml" -Dkafka.logs.dir="$d" \
    -cp "$LIBS/*" kafka.Kafka "$d/server.properties" >>"$d/kafka.log" 2>&1 </dev/null &
  echo $! > "$d/kafka.pid"
  log "node $1 started (pid $!, port $(port "$1"))"
}

wait_port() { # $1 = node
  local t=$((SECONDS + 90))
  until (exec 3<>"/dev/tcp/127.0.0.1/$(port "$1")") 2>/dev/null; do
    [ "$SECONDS" -lt "$t" ] || die "node $1 not listening after 90 s"
    sleep 0.5
  done
}

cmd="${1:-}"; shift || true
case "$cmd" in
  start)
    [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] || "$SCRIPT_DIR/kafka.sh" fetch
    if [ "${1:-}" = --fresh ]; then
      for n in 1 2 3 4 5 6; do pid_of "$n" >/dev/null && die "node $n runs: stop first"; done
      rm -rf "$DATA"
    fi
    mkdir -p "$DATA"
    [ -f "$DATA/cluster.id" ] || new_cluster_id > "$DATA/cluster.id"
    for n in 4 5 6 1 2 3; do start_node "$n"; done
    for n in 1 2 3; do wait_port "$n"; done
    log "listening: $(brokers)" ;;
  start-node) start_node "$1"; wait_port "$1" ;;
  kill)
    pid="$(pid_of "$1")" || die "node $1 not running"
    kill -KILL "$pid"; rm -f "$DATA/node$1/kafka.pid"; log "node $1 killed (pid $pid)" ;;
  stop)
    for n in 1 2 3 4 5 6; do
      if pid="$(pid_of "$n")"; then
        kill -TERM "$pid"
        t=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null; do
          [ "$SECONDS" -lt "$t" ] || { kill -KILL "$pid"; break; }
          sleep 0.2
        done
        rm -f "$DATA/node$n/kafka.pid"; log "node $n stopped"
      fi
    done ;;
  brokers) brokers ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
