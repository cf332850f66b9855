"""A fixed, stored validation set and the scores every model is judged by.

    python -m keras_deblur.validation --output_dir runs/validation/mobile     # score "mobile"
    python -m keras_deblur.validation build                                    # rebuild the set

- `manifest`: which held-out photos (by SHA-256), crop windows, blur classes
  and kernels; `build_validation_manifest`, `save_manifest`, `load_manifest`.
- `pairs`: the manifest turned into (blurred, sharp) uint8 pairs, in memory
  (`load_pairs`) or cached as PNGs (`materialise`); changed photos are refused.
- `scoring`: `score_generator` -> gain over the blurred input per class, with
  standard errors over photos, unsharp-masking and SSIM references, the
  `val_score` that picks the best generator, and `format_table`.
- `curves`: learning curves (validation gain against steps and CPU minutes)
  from training logs.
"""

from keras_deblur.validation.manifest import (
    CLASSES,
    DEFAULT_MANIFEST,
    build_validation_manifest,
    load_manifest,
    save_manifest,
)
from keras_deblur.validation.pairs import (
    DEFAULT_PHOTO_SOURCES,
    ValidationPairs,
    load_pairs,
    materialise,
)
from keras_deblur.validation.scoring import (
    format_table,
    paired_difference,
    score_generator,
)

__all__ = [
    "CLASSES",
    "DEFAULT_MANIFEST",
    "DEFAULT_PHOTO_SOURCES",
    "ValidationPairs",
    "build_validation_manifest",
    "format_table",
    "load_manifest",
    "load_pairs",
    "materialise",
    "paired_difference",
    "save_manifest",
    "score_generator",
]
