#!/usr/bin/env bash
# Sets up, builds (release) and runs the main job: what this host can do, then
# the arena walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/scxkit doctor
./build/release/scxkit arena demo
