#!/usr/bin/env bash
# Sets up, builds (release) and runs the main job: every built-in scenario
# (a few seconds each) against this host's scheduler, with the terminal
# summary and the JSON and HTML reports in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/scxkit run --json build/scxkit-run.json --html build/scxkit-run.html
