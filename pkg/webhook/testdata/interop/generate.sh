#!/usr/bin/env bash
# Regenerates the interoperability vectors (*.json here) with the providers'
# official libraries, pinned in package.json/package-lock.json. Needs Node
# 20+, npm and Go; installs the libraries in a temporary folder, never in
# the repository. Run from anywhere:
#
#   pkg/webhook/testdata/interop/generate.sh
#
# then `go test ./pkg/webhook/ -run Interop` and review the diff.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/generate.mjs" "$work/"
if [ -f "$here/package-lock.json" ]; then
	cp "$here/package-lock.json" "$work/"
	(cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
else
	(cd "$work" && npm install --no-audit --no-fund --loglevel=error)
	cp "$work/package-lock.json" "$here/"
fi
node "$work/generate.mjs" "$root"
