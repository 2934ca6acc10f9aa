#!/usr/bin/env bash
# The SDK as a customer gets it: a real (not editable) install of ./sdk into a fresh venv that
# holds nothing else, proof that no server package came along, then the SDK's own tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv --clear sdk/.venv
# setuptools builds in sdk/build and never prunes it: a module deleted from the source would
# still ship from there
rm -rf sdk/build
sdk/.venv/bin/pip install -q './sdk[test]'

# Neither installed nor loaded: a dependency of the server that leaked into the SDK fails here.
sdk/.venv/bin/python - <<'PY'
import importlib.util, sys
server = {"fastapi", "faust", "chdb", "pydantic_settings", "prometheus_client", "kafka"}
installed = sorted(m for m in server if importlib.util.find_spec(m) is not None)
assert not installed, f"server packages in the SDK's venv: {installed}"
import usage_stream_sdk
assert not server & set(sys.modules), sorted(server & set(sys.modules))
PY

set +e
sdk/.venv/bin/pytest -q sdk/tests
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no SDK tests: that is a failure" >&2
  exit 1
fi
exit "$status"
