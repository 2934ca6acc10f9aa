#!/usr/bin/env bash
# Every check: the SDK on its own, lint, types, unit tests and integration tests against a real
# Kafka broker and the local ClickHouse server (chDB).
# The tests start one broker for the session and stop it when they end, whatever the outcome.
# Arguments go to pytest (e.g. -k collector, -m "not integration").
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
bash deploy/test-sdk.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
set +e
.venv/bin/pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
