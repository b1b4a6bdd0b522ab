#!/usr/bin/env bash
# Run the image molecule scenario with the project's local base image as the node.
# The shared base config (.config/molecule/config.yml) is passed explicitly: molecule finds it
# on its own only below a .git directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
IMAGE_BASE_IMAGE=$(python scripts/base_image.py)
export IMAGE_BASE_IMAGE
exec molecule --base-config "$PWD/.config/molecule/config.yml" "${1:-test}" -s image "${@:2}"
