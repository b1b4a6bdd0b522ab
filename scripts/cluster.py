#!/usr/bin/env python
"""The rehearsal cluster: one container per inventory host, reached over SSH like a real host.

``up`` makes what ``inventories/rehearsal`` describes (docs/rehearsal-cluster.md explains it):

* the images (``scripts/rehearsal_image.py``: the rehearsal serving image and the SSH host image),
* an SSH key pair under ``.cache/rehearsal/ssh/`` (the inventory's ansible_ssh_private_key_file),
* a rehearsal model directory per profile in ``models/`` under ``.cache/rehearsal/models/``,
* the Docker network ``rehearsal_cluster_network`` with ``rehearsal_cluster_subnet``
  (``group_vars/all/cluster.yml``),
* per host of ``hosts.yml`` a container ``<rehearsal_cluster_name>-<host>`` from the host image
  at the host's ``ansible_host`` address: sshd as PID 1, this machine's Docker socket mounted (the
  roles start their containers next to it, in its network namespace), the model directory
  mounted at the same absolute path it has on this machine, and, when the host sets
  ``rehearsal_replay_tree`` in ``hosts.yml`` (a recorded host tree; a relative path is relative
  to the repository), that tree read-only at ``/replay`` with its replayed ``amd-smi``,
  ``rocm-smi`` and ``ibv_devinfo`` on the host's PATH (``/usr/local/bin``),

then waits until every host answers SSH. Everything it makes carries the label
``io.inferops.disagg.rehearsal=<name>`` (the inventory puts it on the deploy's containers too);
``down`` removes exactly what carries it, and nothing else. ``up`` on a running cluster changes
nothing.

Usage (with the project's venv)::

    .venv/bin/python scripts/cluster.py up      [-i inventories/rehearsal]
    .venv/bin/python scripts/cluster.py status
    .venv/bin/python scripts/cluster.py down
    .venv/bin/python scripts/cluster.py clone --dest DIR --name pdt --subnet 172.29.214.0/24
    .venv/bin/python scripts/cluster.py prepare   # the shared parts only (images, key, models)
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import base_image  # noqa: E402
import rehearsal_image  # noqa: E402

REPO_ROOT = base_image.REPO_ROOT
DEFAULT_INVENTORY = REPO_ROOT / "inventories" / "rehearsal"
CLUSTER_DIR = REPO_ROOT / ".cache" / "rehearsal"
SSH_DIR = CLUSTER_DIR / "ssh"
MODELS_DIR = CLUSTER_DIR / "models"
PROFILES_DIR = REPO_ROOT / "models"
LABEL = "io.inferops.disagg.rehearsal"
HOST_LABEL = "io.inferops.disagg.rehearsal.host"
CONFIG_LABEL = "io.inferops.disagg.rehearsal.config"
SSH_TIMEOUT = 60.0
#: Where a host's rehearsal_replay_tree is mounted (read-only) in its container.
REPLAY_MOUNT = "/replay"
#: Replayed commands put on a replaying host's PATH: name -> its place in the tree.
REPLAY_TOOLS = {
    "amd-smi": "opt/rocm/bin/amd-smi",
    "rocm-smi": "usr/bin/rocm-smi",
    "ibv_devinfo": "usr/bin/ibv_devinfo",
}
#: The small scripts that run them from /usr/local/bin (the same for every host and cluster).
REPLAY_BIN_DIR = CLUSTER_DIR / "replay-bin"


class ClusterError(RuntimeError):
    """Something the user must fix; the message says what and how."""


@dataclass(frozen=True)
class Host:
    """One inventory host and the container that plays it."""

    name: str
    address: str
    container: str
    replay_tree: Path | None = None


@dataclass(frozen=True)
class Cluster:
    """What the inventory says the cluster is."""

    name: str
    network: str
    subnet: str
    hosts: tuple[Host, ...]


def log(message: str) -> None:
    """One progress line on stderr."""
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; raise ClusterError with its stderr when ``check`` and it fails."""
    proc = subprocess.run(
        [base_image.require_docker(), *args], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise ClusterError(f"docker {' '.join(args[:3])} … failed: {proc.stderr.strip()}")
    return proc


def _walk_hosts(group: dict, out: dict[str, dict]) -> None:
    for name, hostvars in (group.get("hosts") or {}).items():
        out.setdefault(name, {}).update(hostvars or {})
    for child in (group.get("children") or {}).values():
        _walk_hosts(child or {}, out)


def load_cluster(inventory: Path) -> Cluster:
    """Read ``hosts.yml`` and ``group_vars/all/cluster.yml`` of a rehearsal inventory."""
    hosts_file = inventory / "hosts.yml"
    cluster_file = inventory / "group_vars" / "all" / "cluster.yml"
    for path in (hosts_file, cluster_file):
        if not path.is_file():
            raise ClusterError(f"{path} not found: is {inventory} a rehearsal inventory?")
    settings = yaml.safe_load(cluster_file.read_text()) or {}
    try:
        name = str(settings["rehearsal_cluster_name"])
        network = str(settings["rehearsal_cluster_network"])
        subnet = str(settings["rehearsal_cluster_subnet"])
    except KeyError as exc:
        raise ClusterError(f"{cluster_file}: {exc.args[0]} is not set") from None
    net = ipaddress.ip_network(subnet)
    found: dict[str, dict] = {}
    _walk_hosts((yaml.safe_load(hosts_file.read_text()) or {}).get("all") or {}, found)
    hosts = []
    for host, hostvars in sorted(found.items()):
        address = str(hostvars.get("ansible_host", ""))
        try:
            inside = ipaddress.ip_address(address) in net
        except ValueError:
            inside = False
        if not inside:
            raise ClusterError(
                f"{hosts_file}: {host}: ansible_host must be an IP address in "
                f"rehearsal_cluster_subnet {subnet}, got {address!r}"
            )
        tree = _replay_tree(hosts_file, host, hostvars)
        hosts.append(Host(host, address, f"{name}-{host}", tree))
    if not hosts:
        raise ClusterError(f"{hosts_file} lists no hosts")
    return Cluster(name, network, subnet, tuple(hosts))


def _replay_tree(hosts_file: Path, host: str, hostvars: dict) -> Path | None:
    """The host's ``rehearsal_replay_tree`` as an absolute directory (relative = to the
    repository), or None when it sets none."""
    value = hostvars.get("rehearsal_replay_tree")
    if value in (None, ""):
        return None
    tree = Path(str(value))
    tree = (tree if tree.is_absolute() else REPO_ROOT / tree).resolve()
    if not tree.is_dir():
        raise ClusterError(
            f"{hosts_file}: {host}: rehearsal_replay_tree {value!r} is not a directory "
            f"({tree}). Fix: point it at a recorded host tree, e.g. "
            "tests/fixtures/preflight/trees/replay-fit (relative paths are relative to the "
            "repository)"
        )
    return tree


def tree_digest(tree: Path) -> str:
    """A digest of every path, mode, symlink target and file content under ``tree``: it changes
    whenever the tree does, so ``up`` recreates a host whose replayed tree changed."""
    digest = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_symlink():
            digest.update(f"L\0{rel}\0{path.readlink()}\0".encode())
        elif path.is_file():
            digest.update(f"F\0{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
            digest.update(path.read_bytes())
        else:
            digest.update(f"D\0{rel}\0".encode())
    return digest.hexdigest()


def ensure_replay_bin() -> Path:
    """Write the /usr/local/bin scripts that run a replaying host's tools from its tree."""
    REPLAY_BIN_DIR.mkdir(parents=True, exist_ok=True)
    for tool, rel in REPLAY_TOOLS.items():
        script = REPLAY_BIN_DIR / tool
        text = (
            "#!/bin/sh\n"
            "# scripts/cluster.py: this rehearsal host replays a recorded host tree, mounted at\n"
            f"# {REPLAY_MOUNT}; {tool} is its replay script.\n"
            f'exec {REPLAY_MOUNT}/{rel} "$@"\n'
        )
        if not script.is_file() or script.read_text() != text:
            script.write_text(text)
        script.chmod(0o755)
    return REPLAY_BIN_DIR


def ensure_ssh_key() -> str:
    """Create the cluster's SSH key pair once; return the public key line."""
    key = SSH_DIR / "id_ed25519"
    if not key.exists():
        SSH_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        ssh_keygen = shutil.which("ssh-keygen")
        if ssh_keygen is None:
            raise ClusterError("ssh-keygen not found. Fix: apt-get install openssh-client")
        subprocess.run(
            [
                ssh_keygen,
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "inferops-rehearsal",
                "-f",
                str(key),
            ],
            check=True,
        )
        log(f"SSH key pair {key}")
    return (SSH_DIR / "id_ed25519.pub").read_text().strip()


def ensure_models() -> list[str]:
    """Write a rehearsal model directory for every profile in models/ (idempotent)."""
    from pd_rehearsal.model import write_model_dir

    names = []
    for profile in sorted(PROFILES_DIR.glob("*.yml")):
        data = yaml.safe_load(profile.read_text()) or {}
        name = data.get("name")
        if isinstance(name, str) and name and "/" not in name:
            write_model_dir(MODELS_DIR / name, name)
            names.append(name)
    return names


def ensure_network(cluster: Cluster) -> None:
    """Create the cluster network, or check the existing one is ours."""
    proc = docker("network", "inspect", cluster.network, check=False)
    if proc.returncode == 0:
        info = json.loads(proc.stdout)[0]
        if (info.get("Labels") or {}).get(LABEL) != cluster.name:
            raise ClusterError(
                f"a Docker network {cluster.network} exists that the rehearsal cluster did not "
                f"make. Fix: change rehearsal_cluster_network in group_vars/all/cluster.yml"
            )
        return
    proc = docker(
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        cluster.subnet,
        "--label",
        f"{LABEL}={cluster.name}",
        cluster.network,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"cannot create network {cluster.network} ({cluster.subnet}): {proc.stderr.strip()}. "
            "Fix: pick a free rehearsal_cluster_subnet in group_vars/all/cluster.yml and move "
            "the ansible_host addresses in hosts.yml into it"
        )
    log(f"network {cluster.network} {cluster.subnet}")


def _replay_args(host: Host) -> list[str]:
    """Mounts of a replaying host: its tree at /replay, its tools' scripts in /usr/local/bin."""
    if host.replay_tree is None:
        return []
    args = ["-v", f"{host.replay_tree}:{REPLAY_MOUNT}:ro"]
    for tool, rel in REPLAY_TOOLS.items():
        if (host.replay_tree / rel).is_file():
            args += ["-v", f"{REPLAY_BIN_DIR / tool}:/usr/local/bin/{tool}:ro"]
    return args


def _run_args(cluster: Cluster, host: Host, image: str) -> list[str]:
    models = str(MODELS_DIR)
    return [
        "--name",
        host.container,
        "--hostname",
        host.name,
        "--network",
        cluster.network,
        "--ip",
        host.address,
        "--network-alias",
        host.name,
        "--label",
        f"{LABEL}={cluster.name}",
        "--label",
        f"{HOST_LABEL}={host.name}",
        "-e",
        f"SSH_AUTHORIZED_KEYS={(SSH_DIR / 'id_ed25519.pub').read_text().strip()}",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        f"{models}:{models}:ro",
        *_replay_args(host),
        image,
    ]


def _labelled(kind: str, *labels: str) -> list[str]:
    """Names of Docker objects of ``kind`` (container/network/volume) carrying all ``labels``."""
    fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
    args = [kind, "ls", *(f"--filter=label={label}" for label in labels), "--format", fmt]
    if kind == "container":
        args.insert(2, "-a")
    return [line for line in docker(*args).stdout.splitlines() if line]


def ensure_host(cluster: Cluster, host: Host, image: str) -> str:
    """Start the host container unless it runs with the same settings; say what happened."""
    args = _run_args(cluster, host, image)
    settings = "\0".join(args)
    if host.replay_tree is not None:
        settings += "\0" + tree_digest(host.replay_tree)
    config = hashlib.sha256(settings.encode()).hexdigest()[:12]
    proc = docker("container", "inspect", host.container, check=False)
    if proc.returncode == 0:
        info = json.loads(proc.stdout)[0]
        labels = info["Config"].get("Labels") or {}
        if labels.get(LABEL) != cluster.name:
            raise ClusterError(
                f"a container {host.container} exists that the rehearsal cluster did not make. "
                "Fix: remove it, or change rehearsal_cluster_name in group_vars/all/cluster.yml"
            )
        if labels.get(CONFIG_LABEL) == config and info["State"]["Running"]:
            return "running"
        # Its services live in its network namespace: they go with it.
        for name in _labelled(
            "container", f"{LABEL}={cluster.name}", f"io.inferops.disagg.host={host.name}"
        ):
            if name != host.container:
                docker("rm", "-f", name)
        docker("rm", "-f", host.container)
        what = "recreated"
    else:
        what = "created"
    docker("run", "-d", "--label", f"{CONFIG_LABEL}={config}", *args)
    return what


def remove_stale_hosts(cluster: Cluster) -> None:
    """Remove host containers of this cluster that the inventory no longer lists."""
    wanted = {h.container for h in cluster.hosts}
    proc = docker(
        "ps",
        "-a",
        "--filter",
        f"label={LABEL}={cluster.name}",
        "--filter",
        f"label={HOST_LABEL}",
        "--format",
        '{{.Names}}\t{{.Label "' + HOST_LABEL + '"}}',
    )
    for line in proc.stdout.splitlines():
        name, host = line.split("\t")
        if name not in wanted:
            for other in _labelled(
                "container", f"{LABEL}={cluster.name}", f"io.inferops.disagg.host={host}"
            ):
                docker("rm", "-f", other)
            docker("rm", "-f", name)
            log(f"{host}: {name} removed (no longer in the inventory)")


def wait_ssh(cluster: Cluster, timeout: float = SSH_TIMEOUT) -> None:
    """Wait until every host answers SSH with the cluster key; raise with the host's log."""
    key = SSH_DIR / "id_ed25519"
    deadline = time.monotonic() + timeout
    pending = list(cluster.hosts)
    while pending:
        for host in list(pending):
            proc = subprocess.run(
                [
                    "ssh",
                    "-i",
                    str(key),
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "ConnectTimeout=2",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "LogLevel=ERROR",
                    f"root@{host.address}",
                    "true",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0:
                pending.remove(host)
        if pending and time.monotonic() > deadline:
            host = pending[0]
            logs = docker("logs", "--tail", "20", host.container, check=False)
            raise ClusterError(
                f"{host.name} ({host.container}, {host.address}) does not answer SSH after "
                f"{timeout:.0f}s; its last log lines:\n{logs.stdout}{logs.stderr}"
            )
        if pending:
            time.sleep(0.5)


def prepare(*, build: bool = True) -> None:
    """Everything ``up`` needs that every cluster shares (images, SSH key pair, model
    directories, replay scripts), made once: afterwards several ``up`` of different clusters may
    run at the same time (the test suite's parallel workers) and only read them."""
    if build:
        rehearsal_image.ensure_images()
    ensure_ssh_key()
    models = ensure_models()
    ensure_replay_bin()
    log(f"prepared: images, SSH key {SSH_DIR}, models {', '.join(models)}, replay scripts")


def up(cluster: Cluster, *, build: bool = True) -> None:
    """Make the cluster (see the module docstring); idempotent."""
    started = time.monotonic()
    if build:
        refs = rehearsal_image.ensure_images().refs
    else:
        refs = rehearsal_image.image_refs()
    image = refs["HOST_IMAGE"]
    if not base_image.image_exists(image):
        raise ClusterError(f"{image} is missing. Fix: scripts/rehearsal_image.py")
    ensure_ssh_key()
    models = ensure_models()
    log(f"rehearsal models in {MODELS_DIR}: {', '.join(models)}")
    if any(h.replay_tree is not None for h in cluster.hosts):
        ensure_replay_bin()
    ensure_network(cluster)
    remove_stale_hosts(cluster)
    for host in cluster.hosts:
        what = ensure_host(cluster, host, image)
        replays = f", replays {host.replay_tree}" if host.replay_tree is not None else ""
        log(f"{host.name}: {host.container} at {host.address} {what}{replays}")
    wait_ssh(cluster)
    log(f"{len(cluster.hosts)} hosts answer SSH ({time.monotonic() - started:.1f} s)")


def down(cluster: Cluster) -> None:
    """Remove every container, network and volume labelled with the cluster's name."""
    label = f"{LABEL}={cluster.name}"
    hosts = {h.container for h in cluster.hosts}
    containers = _labelled("container", label)
    # The deploy's containers first: they live in the host containers' network namespaces.
    for name in sorted(containers, key=lambda n: n in hosts):
        docker("rm", "-f", "-v", name)
    for name in _labelled("network", label):
        docker("network", "rm", name)
    for name in _labelled("volume", label):
        docker("volume", "rm", name)
    log(f"removed {len(containers)} container(s) and the network(s) and volume(s) of {label}")


def status(cluster: Cluster) -> int:
    """Print the hosts and the containers on each; return 0 when every host runs."""
    label = f"{LABEL}={cluster.name}"
    proc = docker(
        "ps",
        "-a",
        "--filter",
        f"label={label}",
        "--format",
        '{{.Names}}\t{{.Status}}\t{{.Label "io.inferops.disagg.host"}}'
        '\t{{.Label "' + HOST_LABEL + '"}}',
    )
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line]
    running = 0
    for host in cluster.hosts:
        own = [r for r in rows if r[0] == host.container]
        state = own[0][1] if own else "missing"
        running += state.startswith("Up")
        print(f"{host.name:12} {host.address:15} {host.container:20} {state}")
        for name, st, on_host, *_rest in rows:
            if on_host == host.name and name != host.container:
                print(f"{'':12} {'':15} {name:20} {st}")
    return 0 if running == len(cluster.hosts) else 1


# Generated xPyD layouts (clone --xp/--yd): host offsets inside the subnet. Up to 9 of a role keep
# the 2P1D inventory's addresses (prefill .11-.19, decode .21-.29); more go to .101-.199 and
# .201-.254.
MAX_PREFILL, MAX_DECODE = 99, 54


def _offset(mode: str, index: int, count: int) -> int:
    small = count <= 9
    if mode == "prefill":
        return (10 if small else 100) + index
    return (20 if small else 200) + index


def resize(hosts_file: Path, net: ipaddress.IPv4Network | ipaddress.IPv6Network, xp: int,
           yd: int) -> None:
    """Give the rehearsal inventory ``hosts_file`` ``xp`` prefill and ``yd`` decode hosts
    (prefill-1..xp, decode-1..yd, addresses in ``net``); new hosts copy the variables of the
    group's first host."""
    if not (1 <= xp <= MAX_PREFILL and 1 <= yd <= MAX_DECODE):
        raise ClusterError(f"--xp must be 1-{MAX_PREFILL} and --yd 1-{MAX_DECODE}, "
                           f"got {xp} and {yd}")
    data = yaml.safe_load(hosts_file.read_text()) or {}
    try:
        groups = data["all"]["children"]["rehearsal_hosts"]["children"]
        templates = {m: dict(next(iter(groups[m]["hosts"].values())) or {})
                     for m in ("prefill", "decode")}
    except (KeyError, TypeError, StopIteration):
        raise ClusterError(f"{hosts_file}: --xp/--yd need the rehearsal layout "
                           "(all.children.rehearsal_hosts.children.prefill/decode.hosts)") from None
    for mode, count in (("prefill", xp), ("decode", yd)):
        hosts = {}
        for i in range(1, count + 1):
            address = ipaddress.ip_address(int(net.network_address) + _offset(mode, i, count))
            hosts[f"{mode}-{i}"] = {**templates[mode], "ansible_host": str(address)}
        groups[mode]["hosts"] = hosts
    hosts_file.write_text(f"---\n# Generated by scripts/cluster.py clone --xp {xp} --yd {yd}.\n"
                          + yaml.safe_dump(data, sort_keys=False))


def _group(cluster: Cluster, mode: str) -> list[Host]:
    return [h for h in cluster.hosts if h.name.startswith(f"{mode}-")]


def clone(cluster: Cluster, source: Path, dest: Path, name: str, subnet: str,
          xp: int | None = None, yd: int | None = None) -> None:
    """Copy a rehearsal inventory to ``dest`` as a separate cluster: another name (host
    containers, labels, network, deployment name) and subnet, the same hosts and settings, or
    (``xp``/``yd``) that many prefill and decode hosts.

    Several clusters can then live on one machine (tests and benchmarks use their own, so they
    neither disturb nor depend on the demo cluster).
    """
    try:
        old_net, new_net = ipaddress.ip_network(cluster.subnet), ipaddress.ip_network(subnet)
    except ValueError as exc:
        raise ClusterError(f"--subnet {subnet!r} is not a network ({exc}); fix: give one such as "
                           "172.29.214.0/24") from None
    if new_net.num_addresses < old_net.num_addresses:
        raise ClusterError(f"{subnet} is smaller than {cluster.subnet}")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    hosts_file = dest / "hosts.yml"
    text = hosts_file.read_text()
    for host in cluster.hosts:
        offset = int(ipaddress.ip_address(host.address)) - int(old_net.network_address)
        moved = str(ipaddress.ip_address(int(new_net.network_address) + offset))
        text = text.replace(f"ansible_host: {host.address}\n", f"ansible_host: {moved}\n")
    hosts_file.write_text(text)
    if xp is not None or yd is not None:
        resize(hosts_file, new_net, len(_group(cluster, "prefill")) if xp is None else xp,
               len(_group(cluster, "decode")) if yd is None else yd)
    (dest / "group_vars" / "all" / "cluster.yml").write_text(
        yaml.safe_dump(
            {
                "rehearsal_cluster_name": name,
                "rehearsal_cluster_network": f"{name}-net",
                "rehearsal_cluster_subnet": subnet,
            }
        )
    )
    # The clone lives outside the repository: point it at the repository's cache (SSH key,
    # models; the image refs are in the work directory's images.env) and give its deployment the
    # cluster's name.
    (dest / "group_vars" / "all" / "zz_clone.yml").write_text(
        yaml.safe_dump({"rehearsal_cluster_dir": str(CLUSTER_DIR), "disagg_name": name})
    )
    load_cluster(dest)  # the copy must be a valid rehearsal inventory


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=("up", "down", "status", "clone", "prepare"))
    parser.add_argument(
        "-i",
        "--inventory",
        type=Path,
        default=DEFAULT_INVENTORY,
        help="the rehearsal inventory directory (default: inventories/rehearsal)",
    )
    parser.add_argument(
        "--no-build", action="store_true", help="up: do not build missing images, fail instead"
    )
    parser.add_argument("--dest", type=Path, help="clone: the new inventory directory")
    parser.add_argument("--name", help="clone: the new cluster's name (e.g. pdt)")
    parser.add_argument("--subnet", help="clone: the new cluster's subnet (e.g. 172.29.214.0/24)")
    parser.add_argument("--xp", type=int, help="clone: this many prefill hosts (xPyD layout)")
    parser.add_argument("--yd", type=int, help="clone: this many decode hosts (xPyD layout)")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(build=not args.no_build)
            return 0
        cluster = load_cluster(args.inventory.resolve())
        if args.command == "up":
            up(cluster, build=not args.no_build)
        elif args.command == "clone":
            if not (args.dest and args.name and args.subnet):
                parser.error("clone needs --dest, --name and --subnet")
            clone(cluster, args.inventory.resolve(), args.dest, args.name, args.subnet,
                  args.xp, args.yd)
            print(args.dest)
        elif args.command == "down":
            down(cluster)
        else:
            return status(cluster)
    except (
        ClusterError,
        base_image.BuildError,
        rehearsal_image.ImageError,
        rehearsal_image.wheelhouse.WheelhouseError,
    ) as exc:
        print(f"cluster: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
