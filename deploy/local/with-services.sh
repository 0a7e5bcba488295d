#!/usr/bin/env bash
# Runs a command with real Kafka and Redis available. When INLET_KAFKA_BROKERS
# and INLET_REDIS_URL are already set (CI starts the services itself), the
# command just runs; otherwise this starts both on loopback, runs the
# command, and stops them again whatever happens.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
if [ -n "${INLET_KAFKA_BROKERS:-}" ] && [ -n "${INLET_REDIS_URL:-}" ]; then
  exec "$@"
fi
cleanup() {
  "$here/kafka/kafka.sh" stop || true
  "$here/redis/redis.sh" stop || true
}
trap cleanup EXIT
"$here/kafka/kafka.sh" start
"$here/redis/redis.sh" start
eval "$("$here/env.sh")"
# Started here, so the fault tests may stop and start them.
export INLET_SERVICES_CONTROL=1
"$@"
