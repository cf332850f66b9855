"""Pretrained generators shipped inside the package, loaded by name.

    from keras_deblur import load_generator
    generator = load_generator("mobile")    # the shipped mobile DeblurGAN generator

Each preset is a `.keras` file in this folder with a model card beside it
(`MODEL_CARD.md`: architecture, data and licences, the training command,
validation tables and limitations).
"""

import os

DEFAULT_PRESET = "mobile"
# name -> file in this folder.
PRESETS = {
    "mobile": "mobile_deblurgan.keras",
}
MODEL_CARD = os.path.join(os.path.dirname(__file__), "MODEL_CARD.md")


def preset_path(name):
    """Path of the `.keras` file of the pretrained preset `name`.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        FileNotFoundError: the package was installed without its weights.
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown pretrained preset {name!r}; known presets: {sorted(PRESETS)}")
    path = os.path.join(os.path.dirname(__file__), PRESETS[name])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: weights of preset {name!r} missing from the installation")
    return path
