#!/usr/bin/env bash
# Run a deploy molecule scenario (default: cluster) with the project's local images, then check
# that destroy left nothing labelled for it (containers, networks, volumes).
#   molecule/cluster/run.sh [test|converge|verify|destroy ...] [scenario]
# The shared base config (.config/molecule/config.yml) is passed explicitly: molecule finds it
# on its own only below a .git directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
scenario=${2:-cluster}
.venv/bin/python scripts/rehearsal_image.py >/dev/null   # builds what is missing, writes images.env
set -a; . "$(.venv/bin/python scripts/rehearsal_image.py --env-file)"; set +a
molecule --base-config "$PWD/.config/molecule/config.yml" "${1:-test}" -s "$scenario"
if [ "${1:-test}" = test ] || [ "${1:-test}" = destroy ]; then
  name=$(sed -n 's/^rehearsal_cluster_name: //p' "molecule/$scenario/group_vars/all/zz_molecule.yml")
  label=io.inferops.disagg.rehearsal=$name
  left="$(docker ps -aq --filter "label=$label")$(docker network ls -q --filter "name=^$name-net$")$(docker volume ls -q --filter "label=$label")"
  if [ -n "$left" ]; then echo "left behind ($label): $left" >&2; exit 1; fi
  echo "destroy left nothing labelled $label"
fi
