"""Image labels vs a model profile's ``requires``: ranges, pins, missing labels, foreign images.

The labels are the ones the image role really writes: read from the golden Dockerfiles it
renders (tests/golden/dockerfile/), and the collection's default needs from _common's defaults.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.inferops.disagg.plugins.module_utils import _image_labels as il

REPO = Path(__file__).resolve().parents[4]
GOLDEN = REPO / "tests" / "golden" / "dockerfile"
COMMON_DEFAULTS = yaml.safe_load((REPO / "roles" / "_common" / "defaults" / "main.yml").read_text())
#: Labels of the upstream image the seed ran (docker image inspect): none of ours.
UPSTREAM_LABELS = {"maintainer": "SGLang", "org.opencontainers.image.ref.name": "ubuntu"}


def _labels(dockerfile: str) -> dict[str, str]:
    """The LABEL key="value" pairs of a rendered Dockerfile."""
    text = (GOLDEN / dockerfile).read_text()
    return dict(re.findall(r'([a-z][a-z0-9.-]+)="([^"]*)"', text.split("\nLABEL ", 1)[1]))


ROCM = _labels("rocm.Dockerfile")
REHEARSAL = _labels("rehearsal.Dockerfile")


def test_golden_labels_are_read():
    assert ROCM["io.inferops.component.sglang"] == "0.5.2rc1"
    assert REHEARSAL["io.inferops.component.sglang"] == "0.5.2"
    assert REHEARSAL["io.inferops.profile"] == "rehearsal"


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0.5.2rc1", "0.5.2"),
        ("0.5.2", "0.5.2.post1"),
        ("0.5.2.dev3", "0.5.2a1"),
        ("0.5.2a1", "0.5.2b1"),
        ("0.5.2b1", "0.5.2rc1"),
        ("0.3.7.post2", "0.3.13.post1"),
        ("0.5.10", "0.5.11"),
        ("0.5.9", "0.5.10"),
        ("3.4.23", "3.4.23-4+b4"),
        ("1.23.8", "v1.24"),
    ],
)
def test_versions_order_the_pep_440_way(older, newer):
    assert il.version_key(older) < il.version_key(newer)


def test_trailing_zeros_and_local_parts_compare_equal():
    assert il.version_key("0.5.2") == il.version_key("0.5.2.0")
    assert il.version_key("1.0+local") == il.version_key("1.0")


@pytest.mark.parametrize("value", ["b6a841dc78c707ec655a563453277d969fb8f38d", "none", "", "x1.0"])
def test_non_versions_have_no_key(value):
    assert il.version_key(value) is None


@pytest.mark.parametrize(
    ("spec", "clauses"),
    [
        ("any", []),
        ("ANY", []),
        ("0.5.2", [("==", "0.5.2")]),
        ("==0.5.2rc1", [("==", "0.5.2rc1")]),
        (">=0.5.2, <0.6", [(">=", "0.5.2"), ("<", "0.6")]),
        ("!=0.5.1", [("!=", "0.5.1")]),
        (
            "b6a841dc78c707ec655a563453277d969fb8f38d",
            [("==", "b6a841dc78c707ec655a563453277d969fb8f38d")],
        ),
    ],
)
def test_specs_parse(spec, clauses):
    assert il.parse_spec(spec) == clauses
    assert il.spec_error(spec) is None


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (0.5, "quote numbers"),
        (None, "expected a string"),
        ("", "bad clause"),
        (">=", "bad clause"),
        (">=0.5.2,", "bad clause"),
        ("=>0.5.2", "bad clause"),
        (">=latest", "'latest' is not a version"),
    ],
)
def test_bad_specs_say_why(spec, why):
    assert why in il.spec_error(spec)


def test_collection_default_needs_are_met_by_both_profiles():
    needs = COMMON_DEFAULTS["disagg_image_requires"]
    rdma = COMMON_DEFAULTS["disagg_image_requires_rdma"]
    rocm = il.check(ROCM, {**needs, **rdma})
    assert rocm["ours"] and rocm["problems"] == []
    assert "rdma-core io.inferops.component.rdma-packages=rdma-core" in rocm["met"]
    assert "mooncake io.inferops.component.mooncake=0.3.7.post2" in rocm["met"]
    rehearsal = il.check(REHEARSAL, needs)  # rehearsal: KV over TCP, no RDMA need
    assert rehearsal["ours"] and rehearsal["problems"] == []
    assert rehearsal["profile"] == "rehearsal"
    assert (
        "mooncake io.inferops.component.mooncake-transfer-engine-non-cuda=0.3.13.post1"
        in rehearsal["met"]
    )


def test_a_range_the_image_cannot_meet_names_label_and_values():
    result = il.check(ROCM, {"sglang": ">=0.5.2"})
    assert result["problems"] == [
        "sglang >=0.5.2: label io.inferops.component.sglang=0.5.2rc1 does not meet >=0.5.2"
    ]
    assert il.check(REHEARSAL, {"sglang": ">=0.5.2,<0.6"})["problems"] == []
    assert il.check(REHEARSAL, {"sglang": ">=0.5.0,<0.5.2"})["problems"] == [
        "sglang >=0.5.0,<0.5.2: label io.inferops.component.sglang=0.5.2 does not meet <0.5.2"
    ]


def test_exact_pins_versions_and_commits():
    assert il.check(ROCM, {"sglang-router": "0.3.2", "go": "==1.23.8"})["problems"] == []
    commit = ROCM["io.inferops.component.mooncake.commit"]
    assert il.check(ROCM, {"mooncake.commit": commit})["problems"] == []
    assert il.check(ROCM, {"mooncake.commit": "0" * 40})["problems"] == [
        f"mooncake.commit {'0' * 40}: label io.inferops.component.mooncake.commit={commit} "
        f"does not meet =={'0' * 40}"
    ]
    assert il.check(ROCM, {"sglang": "==0.5.2"})["problems"][0].endswith("does not meet ==0.5.2")


def test_missing_labels_are_named():
    result = il.check(REHEARSAL, {"rdma-core": "any", "etcd": ">=3.5"})
    assert result["problems"] == [
        "etcd >=3.5: missing label io.inferops.component.etcd or io.inferops.component.etcd-server",
        "rdma-core any: missing label io.inferops.component.rdma-core or "
        "io.inferops.component.rdma-packages",
    ]


def test_a_package_list_only_answers_any():
    result = il.check(ROCM, {"rdma-core": ">=50"})
    assert "lists rdma-core without a version" in result["problems"][0]
    assert il.check(ROCM, {"perftest": "any"})["problems"] == [
        "perftest any: missing label io.inferops.component.perftest"
    ]


def test_a_foreign_image_is_not_ours_and_meets_nothing():
    result = il.check(UPSTREAM_LABELS, {"sglang": ">=0.5.2rc1", "mooncake": "any"})
    assert result["ours"] is False and result["profile"] == ""
    assert len(result["problems"]) == 2
    assert il.check(None, {})["ours"] is False


def test_no_needs_no_problems_and_bad_needs_are_reported():
    assert il.check(ROCM, {}) == {"ours": True, "profile": "rocm", "problems": [], "met": []}
    assert il.check(ROCM, {"sglang": 0.5})["problems"][0].startswith("sglang: bad requirement:")


def test_profile_requires_section_is_checked():
    from ansible_collections.inferops.disagg.plugins.module_utils import _model_profile as mp

    profile = yaml.safe_load((REPO / "models" / "Qwen3-32B.yml").read_text())
    assert "requires" not in profile  # shipped profiles use the collection default
    ok = {**profile, "requires": {"sglang": ">=0.5.2rc1", "mooncake": "any", "rdma-core": "any"}}
    assert mp.profile_errors(ok, "models/Qwen3-32B.yml") == []
    assert mp.profile_errors({**profile, "requires": {}}, "m.yml") == []
    bad = {**profile, "requires": {"sglang": 0.5, "Mooncake": "any", "go": ">=new"}}
    assert mp.profile_errors(bad, "m.yml") == [
        "m.yml: requires.sglang: expected a string such as 'any', '0.5.2' or '>=0.5.2' "
        "(quote numbers), got 0.5",
        "m.yml: requires.Mooncake: expected a component name as in the image's "
        "io.inferops.component.<name> labels (lower case, digits, . _ -)",
        "m.yml: requires.go: >=new in '>=new': 'new' is not a version",
    ]
    assert mp.profile_errors({**profile, "requires": ["sglang"]}, "m.yml")[0].startswith(
        "m.yml: requires: expected a mapping of image component to version specifier"
    )
