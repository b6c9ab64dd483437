"""The fuzz suite's short run: a few hundred hostile model files, training sets and sampler calls."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "report.json"
    subprocess.run([sys.executable, "-m", "research.fuzz", "--mode", "short", "--json", str(out)],
                   cwd=ROOT, check=True, timeout=300, capture_output=True)
    return json.loads(out.read_text())["families"]


def test_the_short_run_covers_every_family_and_outcome(report):
    assert {family: t["cases"] for family, t in report.items()} == {
        "model": 300, "legacy": 40, "data": 80, "prompt": 300}
    for family in ("model", "data", "prompt"):
        assert report[family]["ok"] > 0 and report[family]["refused"] > 0


@pytest.mark.parametrize("family", ["model", "legacy", "data"])
def test_hostile_files_give_no_crash_hang_or_silent_bad_load(report, family):
    """A file that keeps its checksum loads as it was written or not at all; one without a checksum (an older
    file's, or one a mutation removed) is only checked for format, shapes, dtypes and finite values."""
    t = report[family]
    assert (t["crashes"], t["hangs"], t["harness_errors"]) == (0, 0, 0), t["examples"]
    assert (t["silent_bad"], t["changed"]) == (0, 0), t["examples"]


def test_hostile_sampler_calls_never_hang(report):
    assert (report["prompt"]["hangs"], report["prompt"]["harness_errors"]) == (0, 0)


def test_hostile_sampler_calls_are_refused_as_value_errors(report):
    assert report["prompt"]["crashes"] == 0, report["prompt"]["crash_types"]
