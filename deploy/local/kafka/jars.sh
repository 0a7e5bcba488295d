# shellcheck shell=bash
# Sourced by kafka.sh and cluster3.sh (after they set SCRIPT_DIR): the Kafka
# version and where kafka.sh fetch puts its jars, defined once so that
# cluster3.sh runs the jars kafka.sh fetched.
#
#   INLET_CACHE_DIR  jars and default data root (default deploy/local/.cache)

REPO_ROOT="$(cd "$SCRIPT_DIR/../../.." && pwd -P)"
POM="$SCRIPT_DIR/pom.xml"
CACHE_DIR="$(realpath -m "${INLET_CACHE_DIR:-$REPO_ROOT/deploy/local/.cache}")"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"
[ -n "$KAFKA_VERSION" ] || { echo "$(basename "$0"): cannot read <kafka.version> from $POM" >&2; exit 2; }
DIST_DIR="$CACHE_DIR/kafka-$KAFKA_VERSION"
LIBS="$DIST_DIR/libs"

# A KRaft cluster id, a Kafka Uuid: 16 random bytes in URL-safe base64
# without padding.
new_cluster_id() {
  head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}
