#!/usr/bin/env bash
# Install what is missing, lint, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 -m ruff check src tests
python3 -m pytest -q "$@"
