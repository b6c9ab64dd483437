"""The repository's own rules: the library never imports ComfyUI or the research code, docs link only to files
that exist inside the repository, and nothing points outside it."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tracked(*patterns: str) -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def _imports(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_][\w.]*)", text, re.MULTILINE))


def test_the_library_imports_neither_comfyui_nor_research():
    for path in (ROOT / "pixelcore").rglob("*.py"):
        roots = {name.split(".")[0] for name in _imports(path)}
        assert not roots & {"comfy", "folder_paths", "server", "nodes", "research"}, path


def test_nodes_do_not_import_research():
    for path in (ROOT / "nodes").rglob("*.py"):
        assert not any(name.split(".")[0] == "research" for name in _imports(path)), path


def test_only_the_library_is_packaged():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'include\s*=\s*\["pixelcore\*"\]', text)


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for md in _tracked("*.md"):
        text = md.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            target = target.split("#")[0]
            if not target or re.match(r"[a-z]+:", target):
                continue
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken, "\n".join(broken)


def test_nothing_points_outside_the_repository():
    offenders = [str(p.relative_to(ROOT)) for p in _tracked()
                 if p.suffix in {".md", ".py", ".sh", ".toml", ".txt", ".json", ".yml", ".yaml", ""}
                 and "../shared" in p.read_text(encoding="utf-8", errors="ignore")
                 and p.name != "test_repository.py"]
    assert not offenders, offenders


def test_the_package_version_is_the_newest_changelog_release():
    """pyproject.toml, ``pixelcore.__version__`` and the top release of CHANGELOG.md name one version."""
    import pixelcore

    project = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE)
    releases = re.findall(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert project and releases
    assert project.group(1) == pixelcore.__version__ == releases[0]
