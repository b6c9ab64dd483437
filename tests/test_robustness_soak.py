"""Short runs of the ComfyUI soak (research/soak.py) on the session's server, so the script keeps working.

The full runs (figures in docs/ROBUSTNESS.md) are ``python -m research.soak``.
"""

import os

import pytest

from comfyui_harness import comfyui_installed
from research.soak import EXPECTED, Soak

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not comfyui_installed() and not os.environ.get("PIXELCORE_REQUIRE_COMFYUI"),
                       reason="ComfyUI not installed: run scripts/install_comfyui.sh"),
]


def test_a_short_soak_loses_no_prompt_and_leaves_the_server_up(server):
    report = Soak(server, seed=1, wave=10, interrupt_rate=0.2, rss_every=10, settle=0).run(20)
    assert report["lost"] == 0
    assert report["server_alive"] and report["object_info_ok"] and report["final_prompt_succeeded"]
    assert report["prompts_queued"] == 20 == report["accepted"] + report["refused_at_validation"]
    assert report["accepted"] == (report["succeeded"] + report["failed_at_run_time"] + report["interrupted"])
    assert report["unexpected_outcomes"] == 0, report["unexpected_examples"]
    outcomes = {EXPECTED[kind] for kind in report["by_kind"]}
    assert outcomes == {"success", "refused", "error"}
    assert report["refused_at_validation"] > 0 and report["failed_at_run_time"] > 0
    assert [n for n, _, _ in report["rss_samples"]] == [0, 10, 20, 20]


def test_every_kind_of_the_stream_ends_as_its_kind_expects(server):
    soak = Soak(server, seed=2, wave=len(EXPECTED), interrupt_rate=0, rss_every=100, settle=0)
    ids = [pid for kind in EXPECTED if (pid := soak.submit(kind))]
    soak.drain(ids)
    soak.collect(ids)
    assert sorted(soak.by_kind) == sorted(EXPECTED)
    assert soak.unexpected == []
    for kind, counts in soak.by_kind.items():
        assert counts[EXPECTED[kind]] == 1, (kind, dict(counts))
