#!/usr/bin/env bash
# kazasu: run every test, installing first what the tests need.
#
#   bash tools/scripts/test.sh
#
# On Debian as root it installs the missing apt packages (libnfc tools, socat,
# tshark, ...) so that no test is skipped for lack of a tool; the Go tests are
# run with KAZASU_REQUIRE_TOOLS=1, which turns "tool missing, skip" into a
# failure. Not root and packages missing: it says which, and stops.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=tools/scripts/packages.sh
. tools/scripts/packages.sh
install_packages "${TEST_PACKAGES[@]}"

export KAZASU_REQUIRE_TOOLS=1
export LIBNFC_LOG_LEVEL=0

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go') || true)
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

step "go vet (CGO_ENABLED=0)"
CGO_ENABLED=0 go vet ./...

step "cross builds (CGO_ENABLED=0): linux/arm64, linux/arm v7, linux/arm v6"
GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build ./...
GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 go build ./...
GOOS=linux GOARCH=arm GOARM=6 CGO_ENABLED=0 go build ./...

step "go vet -tags libnfc (cgo)"
CGO_ENABLED=1 go vet -tags libnfc ./...

step "go test (CGO_ENABLED=0, the default build)"
CGO_ENABLED=0 go test -count=1 -timeout 20m ./...

step "go test -tags libnfc (cgo, Debian libnfc 1.8.0)"
CGO_ENABLED=1 go test -count=1 -timeout 20m -tags libnfc ./drivers/... ./tools/...
