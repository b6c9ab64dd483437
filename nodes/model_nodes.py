"""Nodes that load a model, encode prompts and sample token grids."""

import os
from dataclasses import dataclass

import torch

import comfy.model_management
import comfy.utils
from pixelcore.checkpoint import load_model
from pixelcore.palette import Palette
from pixelcore.sampling import (DEFAULT_CFG, DEFAULT_GUIDANCE_SCHEDULE, DEFAULT_STEPS, DEFAULT_TEMPERATURE,
                                GUIDANCE_SCHEDULES, MAX_BATCH, MAX_CFG, MAX_STEPS, MAX_TEMPERATURE, encode_prompt,
                                sample)

from .paths import model_names, model_path

MODEL = "PIXEL_MODEL"
COND = "PIXEL_COND"
TOKENS = "PIXEL_TOKENS"
# Batches past this are slow on a CPU and fill a preview with hundreds of images; the core allows more.
MAX_NODE_BATCH = min(64, MAX_BATCH)
# Optional, so workflows saved before it existed still load and run (with the default).
GUIDANCE_SCHEDULE_IN = (list(GUIDANCE_SCHEDULES), {
    "default": DEFAULT_GUIDANCE_SCHEDULE,
    "tooltip": "When guidance acts: early = only in the rounds that fix the shape and colours (fewer stray "
               "pixels, a fifth faster); constant = every round (textures made before early was the default); "
               "linear = rising from none."})


@dataclass
class PixelTokens:
    """The PIXEL_TOKENS wire: token grids plus what made them, so a save node can record it."""

    tokens: torch.Tensor  # (N, G, G) long, palette indices
    palette: Palette
    prompts: list[str]  # one per grid
    negative: list[str]  # one per grid, or empty
    seed: int
    batch_index: list[int]  # position of each grid in its prompt's batch

    @classmethod
    def from_batches(cls, tokens, palette, conditioning, inputs: int, batch_size: int, seed: int) -> "PixelTokens":
        """Grids sampled ``batch_size`` per input (input-major, as the core returns them), with their metadata:
        one prompt per input, or a single prompt shared by every input."""
        return cls(tokens, palette, spread(conditioning.prompts, inputs, batch_size),
                   spread(conditioning.negative, inputs, batch_size), seed, list(range(batch_size)) * inputs)


def spread(items, inputs, per_input):
    """Per-output metadata from one item, or one per input repeated for each of its outputs."""
    if len(items) == inputs:
        return [item for item in items for _ in range(per_input)]
    return list(items[:1]) * (inputs * per_input) if items else []


class LoadPixelModel:
    DESCRIPTION = ("Loads a PixelCore model (.safetensors) from models/pixelcore. The built-in model that "
                   "ships with the pack is always listed.")
    CATEGORY = "PixelCore/loaders"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model, for Encode Prompt and MaskGIT Sample.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": (model_names(), {
            "tooltip": "Model file in models/pixelcore (or a 'pixelcore:' folder of extra_model_paths.yaml)."
        })}}

    @classmethod
    def IS_CHANGED(cls, model_name):
        try:
            stat = os.stat(model_path(model_name))
        except OSError:
            return float("nan")  # never equal: run again and report the missing file
        return f"{stat.st_mtime_ns}-{stat.st_size}"

    def load(self, model_name):
        path = model_path(model_name)
        try:
            return (load_model(path, device="cpu"),)
        except ValueError as err:  # CheckpointError names the file and what is wrong
            raise ValueError(f"Cannot load PixelCore model '{model_name}': {err}. Pick another model, or "
                             f"replace the file with a good copy.") from err


class EncodePrompt:
    DESCRIPTION = ("Turns a text prompt (any language; optional negative prompt) into conditioning for "
                   "MaskGIT Sample. Prompts longer than the model's text context are truncated by the "
                   "tokenizer.")
    CATEGORY = "PixelCore/conditioning"
    RETURN_TYPES = (COND,)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("Encoded prompt, for MaskGIT Sample.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The model from Load PixelCore Model."}),
                "prompt": ("STRING", {"multiline": True, "default": "a blue diamond sword",
                                      "tooltip": "What the texture shows, e.g. 'a blue diamond sword'."}),
            },
            "optional": {
                "negative": ("STRING", {"multiline": True, "default": "",
                                        "tooltip": "What to steer away from; leave empty for none."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, prompt):
        # A linked prompt is not known yet (None); the core checks it when the node runs.
        if isinstance(prompt, str) and not prompt.strip():
            return "The prompt is empty: type what the texture shows, e.g. 'a blue diamond sword'."
        return True

    def encode(self, model, prompt, negative=""):
        return (encode_prompt(model, prompt, negative or None),)


class MaskGITSample:
    DESCRIPTION = ("Generates 16x16 palette token grids with MaskGIT parallel decoding. The same seed and "
                   "settings give the same texture on any device.")
    CATEGORY = "PixelCore/sampling"
    RETURN_TYPES = (TOKENS,)
    RETURN_NAMES = ("tokens",)
    OUTPUT_TOOLTIPS = ("Token grids, for Palette Decode (and Save Texture, to record prompt and seed).",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "The model from Load PixelCore Model."}),
            "conditioning": (COND, {"tooltip": "The encoded prompt from Encode Prompt."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff,
                             "control_after_generate": True,
                             "tooltip": "Random seed; the same seed gives the same texture."}),
            "steps": ("INT", {"default": DEFAULT_STEPS, "min": 1, "max": MAX_STEPS,
                              "tooltip": "Decoding steps; more is slower and a little cleaner."}),
            "cfg": ("FLOAT", {"default": DEFAULT_CFG, "min": 0.0, "max": MAX_CFG, "step": 0.1, "round": 0.01,
                              "tooltip": "Prompt guidance in the first rounds, which fix the shape and "
                                         "colours: 1 = none, higher follows the prompt more closely."}),
            "temperature": ("FLOAT", {"default": DEFAULT_TEMPERATURE, "min": 0.01, "max": MAX_TEMPERATURE, "step": 0.05,
                                      "round": 0.01,
                                      "tooltip": "Colour randomness: lower is safer, higher is more "
                                                 "varied."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": MAX_NODE_BATCH,
                                   "tooltip": "How many variations to make from one seed."}),
        }, "optional": {"guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def generate(self, model, conditioning, seed, steps, cfg, temperature, batch_size,
                 guidance_schedule=DEFAULT_GUIDANCE_SCHEDULE):
        mm = comfy.model_management
        progress = comfy.utils.ProgressBar(steps)

        def on_step(step, total):
            mm.throw_exception_if_processing_interrupted()
            progress.update_absolute(step, total)

        generator = torch.Generator("cpu").manual_seed(seed)
        model.to(mm.get_torch_device())
        try:
            tokens = sample(model, conditioning, steps=steps, cfg_scale=cfg, temperature=temperature,
                            guidance_schedule=guidance_schedule, batch_size=batch_size, generator=generator,
                            callback=on_step)
        finally:
            model.to(mm.unet_offload_device())
            mm.soft_empty_cache()

        return (PixelTokens.from_batches(tokens.to(mm.intermediate_device()), model.palette, conditioning,
                                         len(conditioning), batch_size, seed),)
