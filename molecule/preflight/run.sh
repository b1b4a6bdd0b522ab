#!/usr/bin/env bash
# Run the preflight molecule scenario with the project's local base image.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
PREFLIGHT_BASE_IMAGE=$(python scripts/base_image.py)
export PREFLIGHT_BASE_IMAGE
exec molecule "${1:-test}" -s preflight "${@:2}"
