"""The ``pixelcore`` model folder: registration with ComfyUI, the dropdown list, and name -> path."""

import logging
import os

import folder_paths

from pixelcore.checkpoint import default_model_path

FOLDER = "pixelcore"
EXTENSIONS = {".safetensors"}
# The shipped model is listed under this name whether or not a file of the same name sits in models/pixelcore.
BUILTIN_NAME = "pixelcore_default.safetensors (built-in)"

log = logging.getLogger(__name__)


def register_model_folder() -> None:
    """Registers ``models/pixelcore`` (extra_model_paths.yaml may add more under the key ``pixelcore``) and
    creates it if missing, so a user sees where models go. Nothing else happens at start-up.

    ``add_model_folder_path`` creates the entry with an empty extension set, which would list every file,
    so the allowed extensions are set here.
    """
    folder = os.path.join(folder_paths.models_dir, FOLDER)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:  # a read-only install: the built-in model still works
        log.warning("PixelCore: could not create %s (%s); create it by hand to add models.", folder, err)
    folder_paths.add_model_folder_path(FOLDER, folder)
    paths, _ = folder_paths.folder_names_and_paths[FOLDER]
    folder_paths.folder_names_and_paths[FOLDER] = (paths, set(EXTENSIONS))


def model_names() -> list[str]:
    """The dropdown: the built-in model first, then every .safetensors in the registered folders."""
    return [BUILTIN_NAME] + folder_paths.get_filename_list(FOLDER)


def model_path(name: str) -> str:
    """Resolves a dropdown name to a file; ComfyUI's resolver keeps names inside the model folders.

    Raises:
        FileNotFoundError: with a message that says where models go.
    """
    if name == BUILTIN_NAME:
        path = default_model_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"The built-in PixelCore model is missing ({path}). Reinstall the PixelCore pack, or put a "
                f"model .safetensors in models/{FOLDER} and pick it in 'Load PixelCore Model'.")
        return str(path)
    if os.path.splitext(name)[1].lower() not in EXTENSIONS:
        raise FileNotFoundError(f"'{name}' is not a .safetensors file: PixelCore loads only .safetensors "
                                f"models.")
    try:
        return folder_paths.get_full_path_or_raise(FOLDER, name)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"PixelCore model '{name}' was not found in {folder_paths.get_folder_paths(FOLDER)}. Put the "
            f"file in models/{FOLDER} (or a folder listed under 'pixelcore:' in extra_model_paths.yaml), "
            f"then press 'Refresh' and pick it again.") from None
