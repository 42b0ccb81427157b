#!/usr/bin/env bash
# Sets up, then builds and runs the whole test suite under every preset:
# release, ASan+UBSan, TSan. Pass preset names to run only those.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(release asan tsan)
for preset in "${presets[@]}"; do
  echo "=== preset: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
