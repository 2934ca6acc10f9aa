#!/usr/bin/env bash
# Installs everything the stack needs on a fresh machine: Java, Maven, Prometheus and Chromium
# (Debian packages, if missing), a virtual environment with the project, and the Kafka broker's
# jars.
# Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing Java and Maven …"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven
  else
    echo "Java 17+ and Maven are needed (apt-get install openjdk-17-jre-headless maven)" >&2
    exit 1
  fi
fi

# promtool checks the alerting rules and a Prometheus server scrapes a live stack in the tests;
# the stack itself runs without them, so their absence only warns.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing Prometheus and promtool …"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
  else
    echo "warning: the tests need Prometheus and promtool (apt-get install prometheus)" >&2
  fi
fi

# A real browser renders /docs offline in the tests (Playwright drives it; its own browser
# download needs the internet); the stack runs without it, so its absence only warns.
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing Chromium …"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "warning: the tests need Chromium at /usr/bin/chromium (apt-get install chromium)" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# Reinstall only when the dependencies (the server's or the SDK's) changed.
stamp=.venv/.installed-$(cat pyproject.toml sdk/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "installing Python packages into .venv …"
  .venv/bin/pip install -q --upgrade pip
  # one call, so pip takes the usage-stream-sdk the server depends on from ./sdk, not an index
  .venv/bin/pip install -q -e ./sdk -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

.venv/bin/usage-stream kafka fetch
