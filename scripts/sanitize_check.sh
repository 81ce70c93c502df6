#!/usr/bin/env bash
# Builds the op library with AddressSanitizer + UndefinedBehaviorSanitizer (the CMake development
# build) and runs the op tests against it (issue 13, item 4). Any report fails the run.
#
# Usage: bash scripts/sanitize_check.sh [pytest args]     (default: the op, metric and retrieval tests)
# Needs: ./.venv (scripts/setup.sh), cmake, gcc's libasan / libubsan.
#
# The sanitized library is loaded into an unsanitized Python: the runtimes come first through
# LD_PRELOAD. Leak detection is off (CPython and torch keep allocations alive until exit on purpose);
# alloc/dealloc mismatch and ODR reports are off because they fire inside libtorch's own code.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/sanitize
TORCH_PREFIX=$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DOML_FAST_SANITIZE="address,undefined" -DPython3_EXECUTABLE="$PWD/.venv/bin/python" \
  -DCMAKE_MAKE_PROGRAM="$PWD/.venv/bin/ninja" > /dev/null
cmake --build "$BUILD" -j2

# A copy of the package with the sanitized library in place of the normal one, and the tests beside
# it (pytest's pythonpath "." then imports this copy).
STAGE="$BUILD/stage"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -r oml_fast tests pyproject.toml "$STAGE/"
rm -f "$STAGE"/oml_fast/_C*.so
cp "$BUILD"/_C*.so "$STAGE/oml_fast/"
LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
cd "$STAGE"
if [ $# -eq 0 ]; then set -- tests/ops tests/metrics tests/retrieval -m "not slow and not cuda"; fi
LD_PRELOAD="$LIBASAN:$LIBUBSAN" \
  ASAN_OPTIONS=detect_leaks=0:alloc_dealloc_mismatch=0:detect_odr_violation=0:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  OML_FAST_SANITIZED=1 "$OLDPWD/.venv/bin/python" -m pytest -q -p no:cacheprovider -x "$@"
