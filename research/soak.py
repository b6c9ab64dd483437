"""A soak run of the pack inside a real headless ComfyUI: a long stream of mixed good and bad prompts with
interrupts, every accepted prompt followed to its end, the server's memory sampled.

    python -m research.soak --prompts 1000 --out runs/soak

It starts ComfyUI with this pack (``ComfyServer`` of tests/comfyui_harness.py), a model folder that holds a
tiny random model and a corrupt file, and an adapter folder with a LoRA for that model and one made for another,
then queues prompts in waves (``--wave`` at a time, then waits for the queue to drain). In every block of 20
prompts, 15 are good graphs (the test workflows with random seeds, batch sizes, settings and LoRA strengths,
prompts in English, Chinese and odd Unicode, the editing graphs), 3 are refused at validation (a missing input,
a value out of range or of the wrong type, an unknown schedule, model or adapter, an empty prompt) and 2 fail at
run time (the corrupt model, a mask of the wrong size, the other model's adapter, a lone surrogate in the
prompt, a NaN setting). While a wave runs, ``POST /interrupt`` is sent at random moments (``--interrupt-rate`` per
prompt; half of them global, half naming a prompt of the wave).

Every accepted prompt id is read back from ``/history`` once the queue is empty: success, error or
interrupted (an ``execution_interrupted`` message); one with no final state is *lost*. Each outcome is also
compared with the one its kind expects (an interrupted prompt matches any). The RSS of the ComfyUI process and
its children is sampled after start-up, every ``--rss-every`` prompts and at the end; at the end the server must
still be running, serve ``/object_info`` and run one more good prompt. Into ``--out`` go soak.json (the
figures), rss.csv, rss.png and the server's log.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from comfyui_harness import CORRUPT, FOREIGN_LORA, TINY, TINY_LORA, ComfyServer  # noqa: E402

log = logging.getLogger(__name__)

WORKFLOWS = ROOT / "tests" / "workflows_api"
LOAD, ENCODE, SAMPLE = "1", "2", "3"  # node ids shared by every test workflow
SAMPLER_NODE = "PixelCore_MaskGITSample"
BLOCK = {"good": 15, "refused": 3, "error": 2}  # outcome classes in every block of 20 prompts
# kind: (workflow, weight within its class)
GOOD = {"prompt": ("Texture from a prompt", 6), "chinese": ("Texture from a Chinese prompt", 2),
        "odd_unicode": ("Texture from a prompt", 2), "batch": ("Four textures from one seed", 1),
        "inpaint": ("Repaint part of a texture", 1), "variations": ("Variations of a texture", 1),
        "palette_lock": ("Resample in the same colours", 1), "seamless": ("Seamless block tile", 1),
        "recolor": ("Recolour into materials", 1), "lora": ("A new word from a LoRA adapter", 2)}
REFUSED = {"missing_input": 3, "out_of_range": 3, "wrong_type": 1, "unknown_schedule": 1, "unknown_model": 1,
           "unknown_lora": 1, "empty_prompt": 1}
FAILS = {"corrupt_model": 3, "bad_mask": 2, "foreign_lora": 1, "broken_prompt": 1, "nan_setting": 1}
# Kinds that need one graph: an inpaint mask, a LoRA loader.
KIND_WORKFLOW = {"bad_mask": "Repaint part of a texture", "foreign_lora": GOOD["lora"][0],
                 "unknown_lora": GOOD["lora"][0]}
LORA = "PixelCore_LoadLoRA"
WEIGHTS = {"good": {kind: weight for kind, (_, weight) in GOOD.items()}, "refused": REFUSED, "error": FAILS}
EXPECTED = {**dict.fromkeys(GOOD, "success"), **dict.fromkeys(REFUSED, "refused"),
            **dict.fromkeys(FAILS, "error")}

ENGLISH = ["a blue diamond sword", "a wooden pickaxe", "a red apple", "a mossy cobblestone block", "an iron helmet",
           "a golden carrot", "oak planks", "a glowing lava block", "a purple potion bottle", "a green slime ball",
           "a sand block", "an emerald ore block", "a bow", "a bucket of water", "red wool"]
CHINESE = ["一把蓝色的钻石剑", "木镐", "红苹果", "长满青苔的圆石", "铁头盔", "金色的胡萝卜", "橡木木板",
           "發光的岩漿方塊", "紫色的药水瓶", "一把红色的剑 with a gold hilt", "绿色史莱姆球", "沙子方块"]
ODD = ["💎 sword ⚔️", "👩‍🔬 potion", "s̷w̸o̵r̶d̴", "ａ ｂｌｕｅ ｓｗｏｒｄ", "سيف أزرق", "חרב כחולה", "\u200bsword\u200b",
       "red\u00adapple", "sword\tblock\nstone", "ℌ𝔢𝔩𝔪𝔢𝔱", "ÅÉÎØÜ block", "青い剣", "🟥🟦🟩", "sword" + "\u0301" * 50,
       "\ufeffapple", "<script>alert(1)</script>", "'; DROP TABLE textures; --", "%s%n%x {0} {prompt}",
       "../../etc/passwd", "null", "\x07 bell block", "a\x00sword", "a blue sword " * 400, "\u202eevil\u202c block"]
BROKEN = ["\ud800 sword", "a red \udfff apple", "\udc80"]  # lone surrogates, which no tokenizer or file can take
EMPTY = ["", " ", "\n\t ", "\u3000", "\u00a0\u2003"]
SCHEDULES = ["sometimes", "EARLY", "", "early ", "线性", "constant;linear", "none"]
MODELS = ["missing.safetensors", "../" + TINY, "/etc/passwd", "", TINY.upper(), TINY + "\x00.txt"]
LORAS = ["missing_lora.safetensors", "../models_pixelcore_lora/" + TINY_LORA, "../models/" + TINY, "/dev/zero"]


class Cases:
    """Makes (kind, graph) pairs; ranges for out-of-range values come from the server's /object_info."""

    def __init__(self, rng: random.Random, object_info: dict):
        self.rng = rng
        self.workflows = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in WORKFLOWS.glob("*.json")}
        inputs = object_info[SAMPLER_NODE]["input"]
        self.ranges = {name: spec[1] for name, spec in inputs["required"].items()
                       if spec[0] in ("INT", "FLOAT")}
        self.schedules = inputs["optional"]["guidance_schedule"][0]

    def plan(self, n: int) -> list[str]:
        """n kinds: each block of 20 holds the outcome classes of BLOCK, shuffled."""
        kinds = []
        for _ in range(0, n, sum(BLOCK.values())):
            block = []
            for outcome, count in BLOCK.items():
                table = WEIGHTS[outcome]
                block += self.rng.choices(list(table), list(table.values()), k=count)
            self.rng.shuffle(block)
            kinds += block
        return kinds[:n]

    def graph(self, kind: str) -> dict:
        if kind in KIND_WORKFLOW:
            name = KIND_WORKFLOW[kind]
        else:
            name = GOOD[kind][0] if kind in GOOD else self.rng.choice(sorted(self.workflows))
        graph = copy.deepcopy(self.workflows[name])
        graph[LOAD]["inputs"]["model_name"] = TINY
        for node in graph.values():  # the adapter made for the tiny model, at a random strength
            if node["class_type"] == LORA:
                node["inputs"].update(lora_name=TINY_LORA, strength=round(self.rng.uniform(-1.5, 2.0), 2))
        self._randomize(graph, kind)
        getattr(self, f"_{kind}", lambda g: None)(graph)
        return graph

    def _randomize(self, graph: dict, kind: str) -> None:
        rng = self.rng
        pool = {"chinese": CHINESE, "odd_unicode": ODD, "lora": ["a red disc", "a blue disc", "一个 disc"]}.get(
            kind, ENGLISH)
        graph[ENCODE]["inputs"]["prompt"] = rng.choice(pool)
        graph[ENCODE]["inputs"]["negative"] = rng.choice(ENGLISH + CHINESE) if rng.random() < 0.2 else ""
        for node in graph.values():
            inputs = node["inputs"]
            if "seed" in inputs:
                inputs.update(seed=rng.randrange(2**64), steps=rng.randint(1, 12), cfg=round(rng.uniform(0, 4), 2),
                              temperature=round(rng.uniform(0.05, 1.5), 2),
                              guidance_schedule=rng.choice(self.schedules))
            if "batch_size" in inputs:
                inputs["batch_size"] = rng.randint(4, 8) if kind == "batch" else rng.randint(1, 4)
        if kind == "inpaint":
            x, y = rng.randrange(16), rng.randrange(16)
            graph["9"]["inputs"].update(x=x, y=y, width=rng.randint(1, 16), height=rng.randint(1, 16))
        elif kind == "variations":
            graph["10"]["inputs"]["strength"] = round(rng.random(), 2)
        elif kind == "palette_lock":
            graph["9"]["inputs"]["max_colors"] = rng.randint(1, 8)  # 0 needs a palette image
        elif kind == "recolor":
            graph["10"]["inputs"]["variants"] = ", ".join(rng.sample(["red", "blue", "gold", "green", "iron",
                                                                      "金", "钻石", "obsidian"], rng.randint(1, 4)))

    # --- refused at validation ---
    def _missing_input(self, graph: dict) -> None:
        node, name = self.rng.choice([(SAMPLE, "seed"), (SAMPLE, "steps"), (SAMPLE, "cfg"), (SAMPLE, "model"),
                                      (SAMPLE, "temperature"), (SAMPLE, "conditioning"), (ENCODE, "prompt"),
                                      (ENCODE, "model"), (LOAD, "model_name")])
        graph[node]["inputs"].pop(name)

    def _out_of_range(self, graph: dict) -> None:
        name = self.rng.choice(sorted(set(self.ranges) & set(graph[SAMPLE]["inputs"])))
        spec = self.ranges[name]
        step = 1 if isinstance(spec["min"], int) and isinstance(spec["max"], int) else 0.5
        low, high = spec["min"] - step * self.rng.randint(1, 3), spec["max"] + step * self.rng.randint(1, 10**6)
        graph[SAMPLE]["inputs"][name] = self.rng.choice([low, high])

    def _wrong_type(self, graph: dict) -> None:
        name, value = self.rng.choice([("seed", "abc"), ("steps", "ten"), ("cfg", "1.5x"), ("temperature", [1]),
                                       ("steps", {"x": 1}), ("seed", None)])
        graph[SAMPLE]["inputs"][name] = value

    def _unknown_schedule(self, graph: dict) -> None:
        graph[SAMPLE]["inputs"]["guidance_schedule"] = self.rng.choice(SCHEDULES)

    def _unknown_model(self, graph: dict) -> None:
        graph[LOAD]["inputs"]["model_name"] = self.rng.choice(MODELS)

    def _unknown_lora(self, graph: dict) -> None:
        self._lora(graph)["lora_name"] = self.rng.choice(LORAS)

    @staticmethod
    def _lora(graph: dict) -> dict:
        return next(node["inputs"] for node in graph.values() if node["class_type"] == LORA)

    def _empty_prompt(self, graph: dict) -> None:
        graph[ENCODE]["inputs"]["prompt"] = self.rng.choice(EMPTY)

    # --- fail at run time ---
    def _corrupt_model(self, graph: dict) -> None:
        graph[LOAD]["inputs"]["model_name"] = CORRUPT

    def _bad_mask(self, graph: dict) -> None:
        width, height = self.rng.choice([(20, 20), (15, 15), (8, 8), (17, 17), (16, 32), (48, 16), (1, 1)])
        graph["9"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": width, "height": height}}

    def _foreign_lora(self, graph: dict) -> None:  # made for another model of the same shapes
        self._lora(graph).update(lora_name=FOREIGN_LORA, strength=1.0)

    def _broken_prompt(self, graph: dict) -> None:
        graph[ENCODE]["inputs"]["prompt"] = self.rng.choice(BROKEN)

    def _nan_setting(self, graph: dict) -> None:  # NaN passes ComfyUI's min/max check; the node must refuse it
        graph[SAMPLE]["inputs"][self.rng.choice(["cfg", "temperature"])] = float("nan")


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and all its children, in MB; None once the process has ended."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for p in family:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return round(total / 1e6, 1)


def queue_empty(server: ComfyServer) -> bool:
    queue = server.get_json("/queue")
    return not queue["queue_running"] and not queue["queue_pending"]


def final_state(entry: dict | None) -> str | None:
    """success, error or interrupted from a /history entry; None while it has no final state."""
    status = (entry or {}).get("status") or {}
    if status.get("status_str") not in ("success", "error"):
        return None
    if any(kind == "execution_interrupted" for kind, _ in status.get("messages", [])):
        return "interrupted"
    return status["status_str"]


def error_of(entry: dict) -> tuple[str, str]:
    """(node type: exception type, message) of a failed prompt's history entry."""
    for kind, data in entry["status"].get("messages", []):
        if kind == "execution_error":
            return f"{data['node_type']}: {data['exception_type']}", data["exception_message"][:200]
    return "no execution_error message", ""


class Soak:
    """Runs the prompt stream against a started server and gathers the figures."""

    def __init__(self, server: ComfyServer, seed: int = 0, wave: int = 20, interrupt_rate: float = 0.02,
                 rss_every: int = 20, drain_timeout: float = 600.0, settle: float = 12.0,
                 clear_history: bool = False):
        self.server, self.wave, self.interrupt_rate = server, wave, interrupt_rate
        self.rss_every, self.drain_timeout, self.settle = rss_every, drain_timeout, settle
        self.clear_history = clear_history
        self.rng = random.Random(seed)
        self.cases = Cases(self.rng, server.get_json("/object_info"))
        self.by_kind = defaultdict(Counter)
        self.pending: dict[str, str] = {}  # accepted prompt id -> kind
        self.unexpected: list[dict] = []
        self.errors = Counter()
        self.interrupts = Counter()
        self.interrupt_at: list[int] = []  # prompts queued when each interrupt was sent
        self.rss: list[tuple[int, float, float]] = []  # (prompts queued, MB, seconds)
        self.queued = 0
        self.wave_seconds = 5.0
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.server.process.poll() is None

    def sample_rss(self) -> None:
        if self.alive() and (mb := rss_mb(self.server.process.pid)) is not None:
            self.rss.append((self.queued, mb, round(time.monotonic() - self.started, 1)))

    def run(self, prompts: int) -> dict:
        self.sample_rss()
        kinds = self.cases.plan(prompts)
        for first in range(0, prompts, self.wave):
            try:
                ids = [pid for kind in kinds[first:first + self.wave] if (pid := self.submit(kind))]
                self.drain(ids)
                self.collect(ids)
                if self.clear_history:
                    self.server.post_json("/history", {"delete": ids})
            except OSError as err:  # no answer: the report counts what never finished as lost
                log.error("the server stopped answering after %d prompts: %s", self.queued, err)
                break
            if self.queued >= self.rss[-1][0] + self.rss_every:
                self.sample_rss()
            log.info("%d/%d queued, %.0f s, RSS %.0f MB", self.queued, prompts, time.monotonic() - self.started,
                     self.rss[-1][1])
        return self.finish()

    def submit(self, kind: str) -> str | None:
        graph = self.cases.graph(kind)
        status, body = self.server.queue(graph)
        self.queued += 1
        self.by_kind[kind]["queued"] += 1
        if status == 200 and "prompt_id" in body:
            self.by_kind[kind]["accepted"] += 1
            self.pending[body["prompt_id"]] = kind
            if body.get("node_errors"):
                self.note(kind, "accepted with node_errors", json.dumps(body["node_errors"])[:300])
            return body["prompt_id"]
        outcome = "refused" if status == 400 and (body.get("node_errors") or body.get("error")) else f"http {status}"
        self.by_kind[kind][outcome] += 1
        if EXPECTED[kind] != "refused":
            self.note(kind, outcome, json.dumps(body)[:300])
        return None

    def note(self, kind: str, got: str, detail: str) -> None:
        self.unexpected.append({"kind": kind, "expected": EXPECTED[kind], "got": got, "detail": detail})

    def drain(self, ids: list[str]) -> None:
        """Waits for an empty queue, sending this wave's interrupts at their random moments."""
        start = time.monotonic()
        due = sorted(self.rng.uniform(0, 0.8 * self.wave_seconds)
                     for _ in ids if self.rng.random() < self.interrupt_rate)
        while not queue_empty(self.server):
            elapsed = time.monotonic() - start
            if due and elapsed >= due[0]:
                due.pop(0)
                self.interrupt(ids)
            if elapsed > self.drain_timeout:
                log.error("the queue did not drain within %.0f s", self.drain_timeout)
                return
            if not self.alive():
                return
            time.sleep(0.05)
        self.interrupts["not sent: queue already empty"] += len(due)
        self.wave_seconds = max(0.5, time.monotonic() - start)

    def interrupt(self, ids: list[str]) -> None:
        if ids and self.rng.random() < 0.5:
            status, _ = self.server.post_json("/interrupt", {"prompt_id": self.rng.choice(ids)})
            self.interrupts["targeted"] += 1
        else:
            status, _ = self.server.post_json("/interrupt", {})
            self.interrupts["global"] += 1
        self.interrupts["sent"] += 1
        self.interrupt_at.append(self.queued)
        if status != 200:
            self.interrupts[f"http {status}"] += 1

    def collect(self, ids: list[str], grace: float = 5.0, ask: bool = True) -> None:
        """Reads each prompt's final state; one without it after the queue drained (and a grace) is lost, as is
        every one when ``ask`` is false (the server stopped answering)."""
        deadline = time.monotonic() + grace
        for pid in ids:
            entry = None
            while ask and self.alive():
                entry = self.server.get_json(f"/history/{pid}").get(pid)
                if final_state(entry) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            state = final_state(entry)
            kind = self.pending.pop(pid)
            self.by_kind[kind][state or "lost"] += 1
            if state == "error":
                self.errors[error_of(entry)[0]] += 1
            if state != EXPECTED[kind] and state != "interrupted":
                status = json.dumps((entry or {}).get("status"))[:300]
                detail = ": ".join(error_of(entry)) if state == "error" else status
                self.note(kind, state or "lost", detail)

    def finish(self) -> dict:
        try:
            self.collect(list(self.pending))  # left by a wave the server stopped answering in
        except OSError:
            self.collect(list(self.pending), ask=False)
        self.sample_rss()
        time.sleep(self.settle)  # ComfyUI collects garbage once it has been idle for 10 s
        alive = self.alive()
        end_idle = rss_mb(self.server.process.pid) if alive else None
        info_ok = final_ok = False
        if alive:
            try:
                info = self.server.get_json("/object_info")
                info_ok = all(node in info for node in (SAMPLER_NODE, "PixelCore_LoadPixelModel",
                                                        "PixelCore_Inpaint"))
                graph = self.cases.graph("prompt")
                final_ok = final_state(self.server.run(graph, timeout=120)) == "success"
            except (OSError, ValueError, RuntimeError, TimeoutError) as err:
                log.error("the server did not answer at the end: %s", err)
        totals = Counter()
        for counts in self.by_kind.values():
            totals.update(counts)
        return {
            "prompts_queued": self.queued, "accepted": totals["accepted"], "refused_at_validation": totals["refused"],
            "other_http_status": sum(v for k, v in totals.items() if k.startswith("http")),
            "succeeded": totals["success"], "failed_at_run_time": totals["error"],
            "interrupted": totals["interrupted"], "lost": totals["lost"],
            "unexpected_outcomes": len(self.unexpected), "unexpected_examples": self.unexpected[:40],
            "server_alive": alive, "object_info_ok": info_ok, "final_prompt_succeeded": final_ok,
            "interrupts": dict(self.interrupts), "interrupt_at": self.interrupt_at,
            "run_time_errors": dict(self.errors.most_common()),
            "by_kind": {k: dict(v) for k, v in sorted(self.by_kind.items())},
            "rss_mb": rss_figures(self.rss, end_idle), "rss_samples": self.rss,
            "seconds": round(time.monotonic() - self.started, 1),
        }


def rss_figures(samples: list[tuple[int, float, float]], end_idle: float | None) -> dict:
    """Start, after the first samples (warm), peak and end RSS, the growth, and the slope over the second half."""
    values = [mb for _, mb, _ in samples]
    warm = samples[min(1, len(samples) - 1)][1]
    half = samples[len(samples) // 2:]
    slope = None
    if len(half) >= 3 and half[-1][0] > half[0][0]:
        xs, ys = [x for x, _, _ in half], [y for _, y, _ in half]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = round(1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs), 1)
    return {"start": values[0], "after_first_wave": warm, "peak": max(values), "end": values[-1],
            "end_idle": end_idle, "growth": round(values[-1] - values[0], 1),
            "growth_after_first_wave": round(values[-1] - warm, 1), "second_half_slope_per_1000_prompts": slope}


def scan_log(text: str) -> dict:
    """What the server logged: exceptions of prompts by message, other tracebacks, refusals, interrupts and model
    loads (a good prompt after one on the corrupt file loads the tiny model again: ComfyUI caches one result)."""
    exceptions = Counter(re.sub(r"0x[0-9a-f]+|\d+", "N", m)[:160]
                         for m in re.findall(r"!!! Exception during processing !!! (.*)", text))
    import_failed = re.findall(r"IMPORT FAILED: (.*)", text)
    chained = text.count("The above exception was the direct cause") + text.count("During handling of the above")
    tracebacks = text.count("Traceback (most recent call last)") - chained
    return {"exceptions": sum(exceptions.values()), "exception_messages": dict(exceptions.most_common(20)),
            "import_failed": import_failed,
            "other_tracebacks": tracebacks - sum(exceptions.values()) - len(import_failed),
            "invalid_prompts": text.count("invalid prompt:"),
            "processing_interrupted": text.count("Processing interrupted"),
            "model_loads": len(re.findall(r"^loaded \S+ \(", text, re.M))}


def make_model_folders(root: Path) -> tuple[Path, Path]:
    """The model and adapter folders of tests/conftest.py's server: a tiny random model, a corrupt file, an adapter
    for the model and one made for another model."""
    import numpy as np
    import torch

    from pixelcore.checkpoint import save_model
    from pixelcore.lora import Adapter, LoraConfig
    from pixelcore.model import PixelConfig, PixelModel
    from pixelcore.palette import Palette

    models, loras = root / "models", root / "loras"
    models.mkdir(parents=True, exist_ok=True)
    loras.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    palette = Palette.from_colors(np.array([[200, 30, 30], [30, 30, 200], [30, 200, 30], [240, 240, 60]], np.uint8))
    tiny = PixelModel(PixelConfig.tiny(), palette)
    save_model(tiny, models / TINY)
    (models / CORRUPT).write_bytes(b"this is not a safetensors file")
    for model, name in ((tiny, TINY_LORA), (PixelModel(PixelConfig.tiny(), palette), FOREIGN_LORA)):
        adapter = Adapter.create(model, LoraConfig(rank=2, alpha=2.0, words=("disc",)))
        with torch.no_grad():
            for pair in adapter.pairs:  # factors large enough to change the samples
                pair.up.copy_(torch.randn(pair.up.shape) * 3)
        adapter.save(loras / name)
    return models, loras


def plot_rss(samples: list[tuple[int, float, float]], interrupt_at: list[int], path: Path, note: str = "") -> None:
    """A small line chart of RSS over prompts queued (PIL only), interrupts as ticks under the axis."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, right, top, bottom = 800, 360, 70, 20, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    x_max = max(max(xs), 1)
    y_lo, y_hi = min(ys), max(ys)
    step = next(m * 10**k for k in range(6) for m in (1, 2, 5) if m * 10**k * 5 >= max(y_hi - y_lo, 40) * 1.2)
    y_lo, y_hi = step * (y_lo // step), step * (y_hi // step + 1)

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (width - left - right) * x / x_max,
                height - bottom - (height - top - bottom) * (y - y_lo) / (y_hi - y_lo))

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for i in range(round((y_hi - y_lo) / step) + 1):
        y = y_lo + step * i
        px, py = at(0, y)
        draw.line([left, py, width - right, py], fill=(225, 225, 225))
        draw.text((8, py - 6), f"{y:.0f} MB", fill="black", font=font)
    for i in range(6):
        x = x_max * i / 5
        px, _ = at(x, y_lo)
        draw.text((px - 10, height - bottom + 6), f"{x:.0f}", fill="black", font=font)
    for x in interrupt_at:
        px, py = at(x, y_lo)
        draw.line([px, py - 6, px, py], fill=(220, 40, 40))
    draw.line([at(x, y) for x, y in zip(xs, ys)], fill=(30, 80, 200), width=2)
    for x, y in zip(xs, ys):
        px, py = at(x, y)
        draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=(30, 80, 200))
    draw.text((left, 12), f"ComfyUI server RSS (process and children) over {x_max} prompts{note}; red ticks: "
              "interrupts",
              fill="black", font=font)
    draw.text((width // 2 - 40, height - 22), "prompts queued", fill="black", font=font)
    image.save(path)


def _print(report: dict) -> None:
    r = report["rss_mb"]
    print(f"{report['prompts_queued']} prompts queued in {report['seconds']:.0f} s: {report['accepted']} accepted, "
          f"{report['refused_at_validation']} refused at validation, {report['other_http_status']} other status")
    print(f"accepted: {report['succeeded']} succeeded, {report['failed_at_run_time']} failed at run time, "
          f"{report['interrupted']} interrupted, {report['lost']} lost")
    print(f"interrupts: {report['interrupts']}")
    print(f"unexpected outcomes: {report['unexpected_outcomes']}")
    for example in report["unexpected_examples"][:10]:
        print(f"    {example}")
    print(f"server alive: {report['server_alive']}, /object_info: {report['object_info_ok']}, "
          f"a last prompt: {report['final_prompt_succeeded']}")
    print(f"RSS MB: start {r['start']}, after the first wave {r['after_first_wave']}, peak {r['peak']}, "
          f"end {r['end']} (idle {r['end_idle']}), growth {r['growth']} ({r['growth_after_first_wave']} after the "
          f"first wave), second-half slope {r['second_half_slope_per_1000_prompts']} MB per 1000 prompts")
    g = report["log"]
    print(f"server log: {g['exceptions']} exceptions in prompts, {g['invalid_prompts']} invalid prompts, "
          f"{g['processing_interrupted']} interrupted, {g['other_tracebacks']} other tracebacks, "
          f"import failures {g['import_failed']}, {g['model_loads']} model loads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/soak"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wave", type=int, default=20, help="prompts queued before waiting for an empty queue")
    parser.add_argument("--interrupt-rate", type=float, default=0.02, help="interrupts sent per prompt")
    parser.add_argument("--rss-every", type=int, default=20, help="sample RSS every this many prompts")
    parser.add_argument("--clear-history", action="store_true",
                        help="delete each wave's /history entries once read (ComfyUI keeps up to 10,000)")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads (OMP_NUM_THREADS)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pixelcore-soak-") as folder:
        models, loras = make_model_folders(Path(folder))
        server = ComfyServer(Path(folder) / "comfyui", models, lora_dir=loras, threads=args.threads)
        server.start()
        try:
            report = Soak(server, args.seed, args.wave, args.interrupt_rate, args.rss_every,
                          clear_history=args.clear_history).run(args.prompts)
        finally:
            server.stop()
            if server.log_path.is_file():
                shutil.copy(server.log_path, args.out / "comfyui.log")
        report["log"] = scan_log(server.log_text())
    report["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    (args.out / "soak.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    with open(args.out / "rss.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("prompts_queued", "rss_mb", "seconds"), *report["rss_samples"]])
    plot_rss(report["rss_samples"], report["interrupt_at"], args.out / "rss.png",
             ", /history cleared after each wave" if args.clear_history else ", /history kept")
    _print(report)
    ok = report["lost"] == 0 and report["server_alive"] and report["final_prompt_succeeded"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
