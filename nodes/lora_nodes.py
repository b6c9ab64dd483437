"""The LoRA loader node and its model folders: ``models/pixelcore_lora`` and ``models/loras/pixelcore``."""

import os

import folder_paths

from pixelcore.lora import load_adapter
from pixelcore.lora_apply import merged

from .common import MODEL, MODEL_IN

FOLDER = "pixelcore_lora"
EXTENSIONS = {".safetensors"}
MAX_STRENGTH = 4.0


def register_lora_folder() -> None:
    """Registers ``models/pixelcore_lora`` and a ``pixelcore`` folder inside every ``loras`` folder (so adapters
    can sit with a user's other LoRAs); extra_model_paths.yaml may add more under the key ``pixelcore_lora``.
    Only .safetensors files are listed."""
    folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))
    loras = folder_paths.folder_names_and_paths.get("loras", ([os.path.join(folder_paths.models_dir, "loras")],))[0]
    for path in loras:
        folder_paths.add_model_folder_path(FOLDER, os.path.join(path, "pixelcore"))
    paths, _ = folder_paths.folder_names_and_paths[FOLDER]
    folder_paths.folder_names_and_paths[FOLDER] = (paths, set(EXTENSIONS))


def lora_path(name: str) -> str:
    """Resolves a dropdown name to a file inside the adapter folders (ComfyUI's resolver refuses ``../``).

    Raises:
        FileNotFoundError: with a message that says where adapters go.
    """
    if os.path.splitext(name)[1].lower() not in EXTENSIONS:
        raise FileNotFoundError(f"'{name}' is not a .safetensors file: PixelCore loads only .safetensors adapters.")
    try:
        return folder_paths.get_full_path_or_raise(FOLDER, name)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"PixelCore LoRA '{name}' was not found in {folder_paths.get_folder_paths(FOLDER)}. Put the file in "
            f"models/{FOLDER} or models/loras/pixelcore, then press 'Refresh' and pick it again.") from None


class LoadPixelLoRA:
    DESCRIPTION = ("Applies a PixelCore LoRA adapter (made with 'python -m pixelcore lora train') to a model at a "
                   "strength. The output is a new model with the adapter merged in; the input model is left as it "
                   "was. Chain several to stack adapters. Adapters come from models/pixelcore_lora or "
                   "models/loras/pixelcore.")
    CATEGORY = "PixelCore/loaders"
    RETURN_TYPES = (MODEL, "STRING")
    RETURN_NAMES = ("model", "trigger_words")
    OUTPUT_TOOLTIPS = ("The model with the adapter, for Encode Prompt and MaskGIT Sample.",
                       "The adapter's new words (comma-separated): use them in the prompt, e.g. 'a red disc'.")
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL_IN,
            "lora_name": (folder_paths.get_filename_list(FOLDER), {
                "tooltip": "Adapter file in models/pixelcore_lora or models/loras/pixelcore."}),
            "strength": ("FLOAT", {"default": 1.0, "min": -MAX_STRENGTH, "max": MAX_STRENGTH, "step": 0.05,
                                   "round": 0.01,
                                   "tooltip": "1 = as trained, 0 = the model unchanged; between blends."}),
        }}

    @classmethod
    def IS_CHANGED(cls, lora_name, **_):
        try:
            stat = os.stat(lora_path(lora_name))
        except OSError:
            return float("nan")  # never equal: run again and report the missing file
        return f"{stat.st_mtime_ns}-{stat.st_size}"

    def apply(self, model, lora_name, strength):
        path = lora_path(lora_name)
        try:
            adapter = load_adapter(path, model)
        except ValueError as err:  # AdapterError names the file and what is wrong
            raise ValueError(f"Cannot apply PixelCore LoRA '{lora_name}': {err}.") from err
        words = ", ".join(adapter.info.trigger_words)
        if strength == 0:
            return (model, words)
        return (merged(model, [(adapter, strength)]), words)
