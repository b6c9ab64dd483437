"""Nodes that load a model, encode prompts and sample token grids."""

import os

from pixelcore.checkpoint import load_model
from pixelcore.prompts import prompt_notes
from pixelcore.sampling import encode_prompt, sample

from .common import (COND, GUIDANCE_SCHEDULE_IN, MAX_NODE_BATCH, MODEL, SAMPLER, SAMPLING, TOKENS, PixelTokens,
                     run_on_device, sampler_config)
from .paths import model_names, model_path


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
    DESCRIPTION = ("Turns a text prompt (English or Chinese; optional negative prompt) into conditioning for "
                   "MaskGIT Sample, and says which words the model never learned (notes output). Prompts "
                   "longer than the model's text context are truncated by the tokenizer.")
    CATEGORY = "PixelCore/conditioning"
    RETURN_TYPES = (COND, "STRING")
    RETURN_NAMES = ("conditioning", "notes")
    OUTPUT_TOOLTIPS = ("Encoded prompt, for MaskGIT Sample.",
                       "How the model reads the prompt: the words it never learned, e.g. 'unknown words, not "
                       "learned by the model: scope'. Connect it to Preview Any to see it.")
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
        notes = prompt_notes(prompt, negative, builtin=model.config.text_encoder == "builtin")
        return (encode_prompt(model, prompt, negative or None), notes)


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
            **SAMPLING,
            "batch_size": ("INT", {"default": 1, "min": 1, "max": MAX_NODE_BATCH,
                                   "tooltip": "How many variations to make from one seed."}),
        }, "optional": {"guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def generate(self, model, conditioning, seed, steps, cfg, temperature, batch_size,
                 guidance_schedule=SAMPLER.guidance_schedule):
        config = sampler_config(steps, cfg, temperature, guidance_schedule)
        tokens = run_on_device(model, steps, seed, lambda gen, cb: sample(
            model, conditioning, config, batch_size=batch_size, generator=gen, callback=cb))
        return (PixelTokens.from_batches(tokens, model.palette, conditioning, len(conditioning), batch_size, seed,
                                         config),)
