"""Secret environment values: which names, and their values as *** (module_utils/_secrets.py,
the filters of plugins/filter/secrets.py and the plan's use of them)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.filter import secrets as secret_filters
from ansible_collections.inferops.disagg.plugins.module_utils import _plan, _secrets

TOKEN = "hf_unit_test_0123456789"
ENV = {"HF_TOKEN": TOKEN, "aws_secret_access_key": "abcd1234", "DB_PASSWORD": "pw-9876",
       "GITHUB_CREDENTIALS": "ghp_x1y2", "API_KEY": "k-5555", "MC_GID_INDEX": "3",
       "NCCL_SOCKET_IFNAME": "eth0", "WANDB_API": "wandb-42424242"}


@pytest.mark.parametrize(("name", "extra", "secret"), [
    ("HF_TOKEN", None, True),
    ("hf_token", None, True),
    ("AWS_SECRET_ACCESS_KEY", None, True),
    ("MY_PASSWORD_FILE", None, True),
    ("GOOGLE_APPLICATION_CREDENTIALS", None, True),
    ("MC_GID_INDEX", None, False),
    ("WANDB_API", None, False),
    ("WANDB_API", ["wandb_api"], True),
    ("WANDB_API", ["WANDB_*"], True),
    ("WANDB_API", "WANDB_API", True),
    ("WANDB_APIX", ["WANDB_API"], False),
    ("NCCL_DEBUG", ["WANDB_*", ""], False),
])
def test_is_secret(name: str, extra: list[str] | str | None, secret: bool) -> None:
    assert _secrets.is_secret(name, extra) is secret


def test_secret_names_and_redact_env() -> None:
    assert _secrets.secret_names(ENV) == ["API_KEY", "DB_PASSWORD", "GITHUB_CREDENTIALS",
                                          "HF_TOKEN", "aws_secret_access_key"]
    got = _secrets.redact_env(ENV, ["WANDB_*"])
    assert got["HF_TOKEN"] == got["WANDB_API"] == got["API_KEY"] == _secrets.REDACTED
    assert got["MC_GID_INDEX"] == "3" and got["NCCL_SOCKET_IFNAME"] == "eth0"
    assert not any(v in json.dumps(got) for k, v in ENV.items() if k not in
                   ("MC_GID_INDEX", "NCCL_SOCKET_IFNAME"))
    assert _secrets.redact_env(None) == {}


def test_redact_text_replaces_values_longest_first_and_leaves_short_ones() -> None:
    env = {"HF_TOKEN": TOKEN, "SHORT_KEY": "1", "OTHER_TOKEN": TOKEN[:8], "PLAIN": "eth0"}
    text = f"docker said: env HF_TOKEN={TOKEN} other={TOKEN[:8]} count=1 if=eth0"
    got = _secrets.redact_text(text, env)
    assert got == "docker said: env HF_TOKEN=*** other=*** count=1 if=eth0"
    assert _secrets.redact_text("x", None) == "x"
    assert _secrets.redact_text(f"a {TOKEN}", [TOKEN]) == "a ***"


def test_redact_inspect_hides_env_values_everywhere_and_copies() -> None:
    inspect = {"Id": "abc", "Args": ["--token", TOKEN],
               "Config": {"Env": [f"HF_TOKEN={TOKEN}", "MC_GID_INDEX=3", "NOEQUALS",
                                  "WANDB_API=wandb-42424242"],
                          "Cmd": ["python3", f"--hf-token={TOKEN}"], "Labels": {"a": "b"}},
               "State": {"Running": True}}
    got = _secrets.redact_inspect(inspect, ["WANDB_*"])
    assert got["Config"]["Env"] == ["HF_TOKEN=***", "MC_GID_INDEX=3", "NOEQUALS", "WANDB_API=***"]
    assert got["Args"] == ["--token", "***"] and got["Config"]["Cmd"][1] == "--hf-token=***"
    assert TOKEN not in json.dumps(got) and "wandb-42424242" not in json.dumps(got)
    assert got["State"] == {"Running": True} and got["Id"] == "abc"
    assert TOKEN in json.dumps(inspect), "the input must not be changed"
    assert _secrets.redact_inspect({"Id": "x"}) == {"Id": "x"}
    assert _secrets.redact_inspect(None) is None


def test_plan_uses_the_one_pattern_and_the_extra_names() -> None:
    assert _plan.SECRET_WORDS is _secrets.SECRET_WORDS and _plan.REDACTED == "***"
    spec = {"name": "pd-decode", "component": "decode", "env": dict(ENV)}
    entry = _plan.container_entry(spec, None, {"changed": True}, False, ["WANDB_*"])
    assert entry["env"]["WANDB_API"] == "***" and entry["env"]["HF_TOKEN"] == "***"
    assert entry["env"]["MC_GID_INDEX"] == "3"
    assert "wandb-42424242" not in json.dumps(entry) and TOKEN not in json.dumps(entry)


def test_filters() -> None:
    filters = secret_filters.FilterModule().filters()
    assert filters["secret_env_names"](ENV, ["wandb_*"])[-1] == "aws_secret_access_key"
    assert "WANDB_API" in filters["secret_env_names"](ENV, ["wandb_*"])
    assert filters["secret_env_names"]({"NCCL_DEBUG": "INFO"}) == []
    assert filters["secret_env_names"](None) == []
    assert filters["redact_env"](ENV)["HF_TOKEN"] == "***"
    msg = filters["redact_secrets"](f"failed: HF_TOKEN={TOKEN}", ENV, [])
    assert msg == "failed: HF_TOKEN=***"
    assert filters["redact_secrets"](None, ENV) == ""
    with pytest.raises(AnsibleFilterError, match="disagg_secret_env_names"):
        filters["secret_env_names"](ENV, "HF_*")
    with pytest.raises(AnsibleFilterError, match="environment mapping"):
        filters["redact_env"](["HF_TOKEN=x"])
