"""Start a real headless ComfyUI with this pack loaded, talk to it over HTTP, and always stop it.

ComfyUI is looked for in ``.comfy/ComfyUI`` (made by scripts/install_comfyui.sh) or in $PIXELCORE_COMFYUI_DIR.
The pack is loaded through an extra_model_paths.yaml whose ``custom_nodes:`` folder holds a symlink to this
repository, and the same yaml registers the test's model folder under the key ``pixelcore:`` (and its adapter
folder under ``pixelcore_lora:``).
"""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
COMFY_DIR = Path(os.environ.get("PIXELCORE_COMFYUI_DIR", ROOT / ".comfy" / "ComfyUI"))
PACK_LINK_NAME = "PixelCore"
READY_NODE = "PixelCore_LoadPixelModel"
# Model files the session server's model folder holds (see conftest.server).
TINY = "pixelcore_tiny_test.safetensors"
CORRUPT = "corrupt_test.safetensors"
TINY_LORA = "pixelcore_tiny_test_lora.safetensors"  # an adapter for TINY, in the session server's adapter folder
FOREIGN_LORA = "foreign_test_lora.safetensors"  # an adapter made for another model
EXAMPLE_LORA = "folder.safetensors"  # the adapter the LoRA template names: one for the shipped model


def comfyui_installed() -> bool:
    return (COMFY_DIR / "main.py").is_file()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyServer:
    """One ComfyUI process on 127.0.0.1 with its own output/temp/user folders under ``workdir``.

    ``threads`` sets the server's OMP_NUM_THREADS (torch's intra-op threads); None keeps the environment's.
    """

    def __init__(self, workdir: Path, model_dir: Path, boot_timeout: float = 120.0, lora_dir: Path | None = None,
                 threads: int | None = None):
        self.workdir, self.model_dir, self.boot_timeout = Path(workdir), Path(model_dir), boot_timeout
        self.lora_dir = Path(lora_dir) if lora_dir else self.workdir / "models_pixelcore_lora"
        self.threads = threads
        self.output_dir = self.workdir / "output"
        self.log_path = self.workdir / "comfyui.log"
        self.port = None
        self.process = None
        self.client_id = uuid.uuid4().hex

    # --- life cycle ---
    def start(self) -> "ComfyServer":
        nodes_dir = self.workdir / "custom_nodes"
        for folder in (nodes_dir, self.output_dir, self.workdir / "temp", self.workdir / "input",
                       self.workdir / "user", self.model_dir, self.lora_dir):
            folder.mkdir(parents=True, exist_ok=True)
        (nodes_dir / PACK_LINK_NAME).symlink_to(ROOT, target_is_directory=True)
        config = self.workdir / "extra_model_paths.yaml"
        config.write_text(f"pixelcore_tests:\n  custom_nodes: {json.dumps(str(nodes_dir))}\n"
                          f"  pixelcore: {json.dumps(str(self.model_dir))}\n"
                          f"  pixelcore_lora: {json.dumps(str(self.lora_dir))}\n", encoding="utf-8")
        self.port = _free_port()
        command = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                   "--extra-model-paths-config", str(config), "--database-url", "sqlite:///:memory:",
                   "--output-directory", str(self.output_dir), "--temp-directory", str(self.workdir / "temp"),
                   "--input-directory", str(self.workdir / "input"),
                   "--user-directory", str(self.workdir / "user"),
                   "--disable-api-nodes", "--log-stdout"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=COMFY_DIR, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode} during start-up:\n"
                                   f"{self.log_tail()}")
            try:
                if READY_NODE in self.get_json(f"/object_info/{READY_NODE}", timeout=2):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"ComfyUI did not serve {READY_NODE} within {self.boot_timeout:.0f}s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- HTTP ---
    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get_bytes(self, path: str, timeout: float = 30) -> bytes:
        with urllib.request.urlopen(self._url(path), timeout=timeout) as response:
            return response.read()

    def get_json(self, path: str, timeout: float = 30):
        return json.loads(self.get_bytes(path, timeout))

    def post_json(self, path: str, body: dict, timeout: float = 30) -> tuple[int, dict]:
        request = urllib.request.Request(self._url(path), data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    # --- prompts ---
    def queue(self, prompt: dict) -> tuple[int, dict]:
        """POST /prompt: (200, {"prompt_id": ...}) or (400, {"error": ..., "node_errors": ...})."""
        return self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id})

    def wait(self, prompt_id: str, timeout: float = 60.0) -> dict:
        """Polls /history until the prompt finished; returns its history entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                if entry["status"]["status_str"] in ("success", "error"):
                    return entry
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log_tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f}s:\n{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 60.0) -> dict:
        status, body = self.queue(prompt)
        if status != 200:
            raise AssertionError(f"/prompt refused the graph ({status}): {json.dumps(body)[:2000]}")
        return self.wait(body["prompt_id"], timeout)

    def image(self, entry: dict) -> Image.Image:
        """Fetches one output image ({filename, subfolder, type}) through /view."""
        query = urllib.parse.urlencode({k: entry[k] for k in ("filename", "subfolder", "type")})
        image = Image.open(io.BytesIO(self.get_bytes(f"/view?{query}")))
        image.load()
        return image


def execution_error(entry: dict) -> dict | None:
    """The execution_error message of a finished history entry, if any."""
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data
    return None
