#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtual environment in .venv with the CPU build of torch.
#   bash setup.sh          the product (train, score, apps)
#   bash setup.sh --dev    plus what the tests need
set -euo pipefail
cd "$(dirname "$0")"
requirements=requirements.txt
if [ "${1:-}" = "--dev" ]; then
  requirements=requirements-dev.txt
  # the browser tests drive Debian's Chromium (Playwright's own browser download is not used)
  if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  # score --on spark runs on Java 17 or 21 (the tests run it)
  if ! command -v java >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r "$requirements"
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
echo "set up: $(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
