#!/usr/bin/env bash
# The main job on the local default: a local ClickHouse server and Kafka broker, a worker and
# the collector, then the demo.
# Arguments go to `usage-stream up` (e.g. --no-demo, --exit-after-demo). Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
exec .venv/bin/usage-stream up "$@"
