#!/usr/bin/env bash
# Set up the project's environment on a fresh Debian 12 machine (idempotent, ~2 min cold, seconds warm).
#  - Debian packages: Mooncake's runtime libraries, mmdebstrap (local base images), etcd, ssh client
#  - .venv/ with the Python side (pdctl, rehearsal engine, real sglang-router, Mooncake, test tools)
#  - sglang==0.5.2 without its GPU dependencies (bench_serving client + server_args definitions)
#  - Ansible collections from PyPI's `ansible` bundle (Galaxy is not needed); the collection itself
#    is linked under .cache/collections so `inferops.disagg.*` resolves from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

APT_PACKAGES=(mmdebstrap libibverbs1 librdmacm1 libnuma1 liburing2 libcurl4 etcd-server etcd-client
              openssh-client iproute2 slurmctld slurmd slurm-client shellcheck)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[rehearsal,stack,test,dev]"
  # sglang's declared deps pull a multi-GB CUDA torch; the client and server_args need none of it.
  .venv/bin/pip install -q --no-deps "sglang==0.5.2"
  .venv/bin/pip install -q "ipython>=8,<10"
  echo "$want" > "$stamp"
fi

mkdir -p .cache/collections/ansible_collections/inferops
ln -sfn "$ROOT" .cache/collections/ansible_collections/inferops/disagg

collections=$(.venv/bin/ansible-galaxy collection list community.docker 2>/dev/null || true)
if ! grep -q community.docker <<<"$collections"; then
  echo "setup: community.docker not visible to ansible-galaxy" >&2
  exit 1
fi
echo "setup: ready ($(.venv/bin/ansible --version 2>/dev/null | sed -n 1p))"
