#!/usr/bin/env bash
# Prints the environment the integration suite reads to reach the brokers
# started by deploy/local/kafka/kafka.sh and deploy/local/redis/redis.sh:
#
#   eval "$(deploy/local/env.sh)"
#
# Honours the same port overrides as those scripts.
set -euo pipefail
echo "export INLET_KAFKA_BROKERS=127.0.0.1:${INLET_KAFKA_PORT:-19092}"
echo "export INLET_REDIS_URL=redis://127.0.0.1:${INLET_REDIS_PORT:-16379}/0"
