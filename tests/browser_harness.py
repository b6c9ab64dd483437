"""Drive ComfyUI's real frontend in Debian's headless Chromium (selenium + chromedriver from apt), against a
``ComfyServer`` of comfyui_harness.py. Used by test_browser.py and by the scripts that lay out the example
workflows and take the README's screenshots.
"""

import json
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, offline and quiet: no sandbox (root in CI), no GPU, no QUIC, no first-run or background traffic.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")
WINDOW = (1600, 1000)
# Settings of a fresh user, set before the page loads: no first-run template dialog, no "new UI" banner.
FRESH_USER_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.VueNodes.Enabled": False,
                       "Comfy.Release.Version": "99.0.0",
                       "Comfy.Release.Status": "skipped", "Comfy.Release.Timestamp": int(time.time() * 1000)}


def browser_available() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


class Page:
    """One Chromium with a fresh profile showing the server's frontend; ``close()`` always ends it."""

    def __init__(self, server, window=WINDOW):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.server = server
        for key, value in FRESH_USER_SETTINGS.items():
            server.post_json(f"/settings/{key}", value)
        self.profile = tempfile.mkdtemp(prefix="pixelcore-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--window-size={window[0]},{window[1]}")
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        except BaseException:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise

    def open(self, timeout: float = 120.0) -> "Page":
        """Loads the frontend and waits until the pack's nodes are registered in it."""
        url = f"http://127.0.0.1:{self.server.port}/"
        self.driver.get(url)
        self.js("localStorage.setItem('vueNodesBannerDismissed', 'true')")  # kept in the browser, not the user
        self.driver.get(url)
        self.wait_for("window.app && app.graph && window.LiteGraph && "
                      "LiteGraph.registered_node_types['PixelCore_LoadPixelModel'] && "
                      "document.querySelector('.graph-canvas-container, canvas#graph-canvas')", timeout)
        self.js("""window.__pixelcore = {errors: []};
                   const api = window.comfyAPI.api.api;
                   for (const kind of ['execution_error', 'execution_interrupted'])
                       api.addEventListener(kind, e => window.__pixelcore.errors.push({kind, detail: e.detail}));""")
        return self

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- the page ---
    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, script: str, *args):
        """Runs ``script`` as the body of an async function; returns what it returns."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"(async (...args) => {{ {script} }})(...Array.from(arguments).slice(0, -1))"
            ".then(done, e => done({__error: String(e && e.stack || e)}));", *args)

    def wait_for(self, condition: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(f"try {{ return ({condition}); }} catch (e) {{ return null; }}")
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"the page never showed {condition!r}")

    def wait_for_pictures(self, node_ids, timeout: float = 30.0) -> None:
        """Waits until each of these nodes shows its pictures, loaded."""
        ids = json.dumps([int(i) for i in node_ids])
        self.wait_for(f"{ids}.every(id => {{ const n = app.graph.getNodeById(id); "
                      f"return n && n.imgs && n.imgs.length && n.imgs.every(i => i.complete && i.naturalWidth); }})",
                      timeout)
        for _ in range(2):  # the first frame lays the picture out, the second draws it
            self.js("app.canvas.setDirty(true, true)")
            time.sleep(0.5)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def dialogs(self) -> list[str]:
        """The text of every dialog open on the page (missing nodes, errors, ...)."""
        return self.js("return Array.from(document.querySelectorAll('.p-dialog, .comfy-modal'))"
                       ".filter(d => d.offsetParent !== null).map(d => d.innerText);")

    def pack_errors(self) -> list:
        return self.js("return window.__pixelcore.errors")

    # --- workflows ---
    def load_workflow(self, workflow: dict) -> None:
        result = self.js_async("await app.loadGraphData(args[0]); return true;", workflow)
        if isinstance(result, dict) and "__error" in result:
            raise RuntimeError(f"loadGraphData failed: {result['__error']}")

    def nodes(self) -> list[dict]:
        """Every node as the canvas has it: id, type, pos, size, the size it needs, its drawn rectangle and the
        width of its title."""
        return self.js("""const ctx = app.canvas.ctx; ctx.save(); ctx.font = app.canvas.title_text_font;
            const nodes = app.graph.nodes.map(n => ({id: n.id, type: n.type, pos: Array.from(n.pos),
                size: Array.from(n.size), needs: Array.from(n.computeSize()), rect: Array.from(n.boundingRect),
                title_width: ctx.measureText(n.getTitle()).width,
                registered: !!LiteGraph.registered_node_types[n.type]}));
            ctx.restore(); return nodes;""")

    def queue(self) -> None:
        result = self.js_async("await app.queuePrompt(0); return true;")
        if isinstance(result, dict) and "__error" in result:
            raise RuntimeError(f"queuePrompt failed: {result['__error']}")

    def drop_file(self, data: bytes, name: str, mime: str = "image/png") -> None:
        """Hands a file to the frontend as a drop onto the canvas does (``app.handleFile``)."""
        result = self.js_async("""const bytes = Uint8Array.from(atob(args[0]), c => c.charCodeAt(0));
            await app.handleFile(new File([bytes], args[1], {type: args[2]})); return true;""",
                               _b64(data), name, mime)
        if isinstance(result, dict) and "__error" in result:
            raise RuntimeError(f"handleFile failed: {result['__error']}")


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def history_ids(server) -> set[str]:
    return set(server.get_json("/history"))


def wait_new_history(server, before: set[str], timeout: float = 120.0) -> dict:
    """The history entry of the one prompt queued since ``before`` was taken, once it finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = set(server.get_json("/history")) - before
        if new:
            return server.wait(new.pop(), max(1.0, deadline - time.monotonic()))
        time.sleep(0.2)
    raise TimeoutError(f"nothing reached the history within {timeout:.0f}s:\n{server.log_tail()}")


def template(server, pack: str, name: str) -> dict:
    """A workflow as the template browser fetches it."""
    url = f"http://127.0.0.1:{server.port}/api/workflow_templates/{pack}/{urllib.request.quote(name)}.json"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())
