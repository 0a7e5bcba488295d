#!/usr/bin/env bash
# Fetches the providers' own example payloads that the contract fixtures
# marked *.octokit.json are copied from, at pinned versions, and writes
# them into the fixture directories. Needs npm and python3; the tests need
# neither (the fixtures are committed). Run from anywhere:
#
#   bash schemas/contracts/testdata/provider-examples.sh
#
# With CHECK=1 it only reports how many examples each shipped GitHub
# contract would be given (push, pull_request, issues, ping) and writes
# nothing.
set -euo pipefail

OCTOKIT_EXAMPLES=@octokit/webhooks-examples@7.6.1

here=$(cd "$(dirname "$0")/.." && pwd) # schemas/contracts
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "$OCTOKIT_EXAMPLES" >/dev/null && tar xzf ./*.tgz)

python3 - "$tmp/package/api.github.com/index.json" "$here" "${CHECK:-}" <<'PY'
import json, sys
index, root, check = sys.argv[1], sys.argv[2], sys.argv[3]
events = {e["name"]: e["examples"] for e in json.load(open(index))}
if check:
    for name in ("push", "pull_request", "issues", "ping"):
        print(name, len(events.get(name, [])))
    sys.exit(0)
for action in ("pinned", "unpinned"):
    ex = [e for e in events["issues"] if e.get("action") == action]
    assert len(ex) == 1, (action, len(ex))
    path = f"{root}/github/issues/fixtures/v2/issues.{action}.octokit.json"
    with open(path, "w") as f:
        f.write(json.dumps(ex[0], indent=2) + "\n")
    print("wrote", path)
PY
