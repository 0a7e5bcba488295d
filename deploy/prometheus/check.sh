#!/usr/bin/env bash
# Checks Inlet's Prometheus and Grafana files:
#
#   1. promtool check rules  deploy/prometheus/alerts.yml      (syntax, PromQL, templates)
#   2. promtool test rules   deploy/prometheus/alerts_test.yml (alert unit tests)
#   3. promtool check config deploy/prometheus/prometheus.yml  (with the container
#      paths mapped back to this checkout, so rule_files must point at alerts.yml
#      as docker-compose.yml mounts it)
#   4. promtool check config deploy/prometheus/kubernetes-scrape.yml, which must
#      name the jobs the rules select
#   5. deploy/grafana/dashboards/*.json are valid JSON, and every PromQL query in
#      them parses (needs python3; skipped with a note otherwise)
#
# Usage: deploy/prometheus/check.sh          (from anywhere)
#        PROMTOOL=/path/to/promtool deploy/prometheus/check.sh
#
# Exits non-zero on any failure. Without promtool it prints a SKIP line and
# exits 0 (CI installs it: Debian package `prometheus`).
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$DIR/../.." && pwd -P)"
PROMTOOL="${PROMTOOL:-promtool}"
MOUNT=/etc/prometheus/inlet   # where docker-compose.yml mounts deploy/prometheus

if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
  echo "SKIP: promtool not found (apt-get install prometheus, or set PROMTOOL=); alert rules and tests NOT checked"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
step() { echo; echo "== $*"; }

echo "promtool: $("$PROMTOOL" --version 2>&1 | head -n1)"

step "promtool check rules deploy/prometheus/alerts.yml"
"$PROMTOOL" check rules --lint-fatal "$DIR/alerts.yml" || fail=1

step "promtool test rules deploy/prometheus/alerts_test.yml"
(cd "$DIR" && "$PROMTOOL" test rules alerts_test.yml) || fail=1

step "promtool check config deploy/prometheus/prometheus.yml (paths under $MOUNT mapped to deploy/prometheus)"
sed "s#$MOUNT/#$DIR/#g" "$DIR/prometheus.yml" > "$tmp/prometheus.yml"
if ! grep -q "^  - $MOUNT/alerts.yml" "$DIR/prometheus.yml"; then
  echo "FAILED: prometheus.yml rule_files does not load $MOUNT/alerts.yml"
  fail=1
fi
"$PROMTOOL" check config --lint-fatal "$tmp/prometheus.yml" || fail=1

step "promtool check config deploy/prometheus/kubernetes-scrape.yml"
if ! out="$(cd "$DIR" && "$PROMTOOL" check config --lint-fatal kubernetes-scrape.yml 2>&1)"; then
  if grep -q "field kubernetes_sd_configs not found" <<<"$out"; then
    # Debian's prometheus package is built without Kubernetes discovery.
    echo "SKIP: this promtool has no Kubernetes service discovery; only the job names are checked"
  else
    echo "$out"
    fail=1
  fi
else
  echo "$out"
fi
for job in inlet-ingest inlet-processor; do
  grep -q "job_name: $job\$" "$DIR/kubernetes-scrape.yml" || { echo "FAILED: kubernetes-scrape.yml has no job $job (alerts.yml selects it)"; fail=1; }
done

step "Grafana dashboards: JSON and PromQL"
if command -v python3 >/dev/null 2>&1; then
  # Every target expr becomes a recording rule, with Grafana's variables
  # replaced by plausible values, so promtool parses it.
  if python3 - "$ROOT"/deploy/grafana/dashboards/*.json > "$tmp/dashboard_rules.yml" <<'PY'
import json, sys
rules = []
for path in sys.argv[1:]:
    with open(path) as f:
        d = json.load(f)  # raises (and fails the step) on invalid JSON
    def walk(panels):
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))
    exprs = [(p.get("title", "?") + " / " + t.get("refId", "?"), t["expr"])
             for p in walk(d.get("panels", [])) for t in p.get("targets", []) if t.get("expr")]
    exprs += [("annotation " + a["name"], a["expr"]) for a in d.get("annotations", {}).get("list", []) if a.get("expr")]
    for title, e in exprs:
        for var, val in (("$__rate_interval", "1m"), ("$__interval", "1m"), ("$__range", "1h"),
                         ("${source}", "stripe"), ("$source", "stripe")):
            e = e.replace(var, val)
        rules.append({"record": "dashboard:check", "expr": e, "labels": {"query": title}})
    print(f"{path}: valid JSON, {len(exprs)} queries", file=sys.stderr)
print(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
PY
  then
    "$PROMTOOL" check rules --lint-fatal "$tmp/dashboard_rules.yml" || fail=1
  else
    echo "FAILED: a dashboard is not valid JSON"
    fail=1
  fi
else
  echo "SKIP: python3 not found; dashboards not checked"
fi

echo
if [ "$fail" -ne 0 ]; then
  echo "check.sh: FAILED"
  exit 1
fi
echo "check.sh: OK"
