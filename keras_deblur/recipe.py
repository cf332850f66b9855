"""The training recipe: every choice of a training run in one typed, frozen object.

    from keras_deblur.recipe import Recipe, get_preset
    recipe = get_preset("mobile").replace(epochs=10, sharp_dirs=("photos/",))
    recipe.to_json("recipe.json")
    assert Recipe.from_json("recipe.json") == recipe

`Recipe()` is the paper (Kupyn et al., 2018): GoPro-sized 256x256 crops, batch
1, 300 epochs (150 at 1e-4, then a linear decay to 0), WGAN-GP with 5 critic
steps and lambda 10, 100 x VGG19 conv3_3 content loss. Presets (`PRESETS`) are
recipes too; `python -m keras_deblur.train` builds its flags from the fields
below, so a field always has a flag of the same name, and a run's
`config.json` is its recipe, which `--resume` reads back.

Fields, by group:

- data: `paired_dirs`, `sharp_dirs`, `val_paired_dirs`, `val_sharp_dirs`,
  `synthetic_ratio`, `crop_size`, `batch_size`, `blur_exposures`,
  `blur_fractions`, `unblurred_ratio`, `depth_of_field_ratio`, `soft_ratio`,
  `misfocus_ratio`, `procedural_ratio`, `augment`, `noise_ratio`, `jpeg_ratio`, `max_pixels`;
- model: `architecture`, `num_filters`, `num_res_blocks`, `init_weights`;
- losses: `content_weight`, `vgg_weights`, `pixel_weight`, `pixel_loss`, `log_mse_floor`,
  `harm_weight`,
  `adversarial_weight`, `gp_weight`, `critic_steps`;
- schedule: `epochs`, `steps_per_epoch`, `warmup_epochs`, `learning_rate`,
  `max_cpu_minutes`;
- validation and outputs: `validation_steps`, `validation_photos`,
  `validation_every`, `num_samples`, `snapshots`, `keep_checkpoints`;
- runtime: `strategy`, `tpu_address`, `precision`, `jit_compile`, `seed`.
"""

import dataclasses
import json
import math
import types
import typing

from keras_deblur.losses import LOG_MSE_FLOOR, PIXEL_LOSSES
from keras_deblur.models import GENERATOR_BUILDERS

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
VGG_AUTO = "auto"
# Shares of the synthetic pairs given to `datasets.synthetic_dataset` when not 0.
_BLUR_RATIOS = (
    "unblurred_ratio",
    "depth_of_field_ratio",
    "soft_ratio",
    "misfocus_ratio",
    "noise_ratio",
    "jpeg_ratio",
)


def _field(default, group, help_text, choices=None):
    """A dataclass field carrying its group, its flag's help and its allowed values."""
    metadata = {"group": group, "help": help_text, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run, with the paper's values as defaults.

    Every field is checked on construction (`ValueError`, one line naming the
    field; floats must be finite); sequences are stored as tuples. See the module docstring for the
    groups and `keras_deblur.train.train` for how a run uses them.
    """

    # ---------------------------------------------------------------- data
    paired_dirs: tuple[str, ...] = _field((), "data", "GoPro-layout blurred/sharp pair folders.")
    sharp_dirs: tuple[str, ...] = _field(
        (), "data", "Folders of sharp photos blurred on the fly ('embedded': scikit-image's)."
    )
    val_paired_dirs: tuple[str, ...] = _field((), "data", "Validation pairs.")
    val_sharp_dirs: tuple[str, ...] = _field(
        (), "data", "Validation sharp photos, blurred with a fixed seed (default: embedded)."
    )
    synthetic_ratio: float = _field(2 / 3, "data", "Share of synthetic pairs when mixing.")
    crop_size: int = _field(256, "data", "Training crop side (multiple of 4).")
    batch_size: int = _field(1, "data", "Global batch size.")
    blur_exposures: tuple[float | None, ...] | None = _field(
        None,
        "data",
        "Synthetic blur exposures picked uniformly; 'uniform' (None) draws the trajectory's own "
        "0.1*U(0,1) (default: the reference dataset script's mix).",
    )
    blur_fractions: tuple[float, ...] | None = _field(
        None, "data", "Synthetic blur exposure fractions in (0, 1]."
    )
    unblurred_ratio: float = _field(0.0, "data", "Share of synthetic pairs left unblurred.")
    depth_of_field_ratio: float = _field(
        0.0,
        "data",
        "Share of synthetic pairs whose sharp image first gets synthetic shallow depth of field "
        "(kept in the target).",
    )
    soft_ratio: float = _field(
        0.0,
        "data",
        "Share of synthetic pairs whose sharp image is first made a little soft all over (a "
        "0.5-2 pixel disk, kept in the target), after the depth_of_field_ratio share.",
    )
    misfocus_ratio: float = _field(
        0.0,
        "data",
        "Share of synthetic pairs whose sharp image is first misfocused (soft everywhere, by a "
        "0.5-2 pixel disk at the nearest depth and more further away; kept in the target), after "
        "the soft_ratio share.",
    )
    procedural_ratio: float = _field(
        0.0, "data", "Share of synthetic pairs from the endless dead-leaves image stream."
    )
    augment: bool = _field(
        False, "data", "Rescale, colour-jitter, flip and rotate the sharp photos."
    )
    noise_ratio: float = _field(
        0.0, "data", "Share of synthetic pairs with sensor noise after the blur."
    )
    jpeg_ratio: float = _field(
        0.0, "data", "Share of synthetic pairs JPEG-compressed after the blur."
    )
    max_pixels: int | None = _field(
        None, "data", "Skip photos whose header claims more pixels (default: 120 M)."
    )
    # --------------------------------------------------------------- model
    architecture: str = _field(
        "resnet", "model", "Generator design.", choices=tuple(GENERATOR_BUILDERS)
    )
    num_filters: int | None = _field(None, "model", "Generator width (default: the design's).")
    num_res_blocks: int | None = _field(None, "model", "Residual blocks (default: the design's).")
    init_weights: str | None = _field(
        None, "model", "Fine-tune: start the generator from a preset name or .keras."
    )
    # -------------------------------------------------------------- losses
    content_weight: float = _field(100.0, "losses", "VGG19 perceptual loss weight (0: no VGG).")
    vgg_weights: str | None = _field(
        VGG_AUTO, "losses", "auto | imagenet | none | path to the .h5 VGG19 weights."
    )
    pixel_weight: float = _field(0.0, "losses", "Pixel loss weight (not in the paper).")
    pixel_loss: str = _field("mse", "losses", "Pixel loss.", choices=tuple(sorted(PIXEL_LOSSES)))
    log_mse_floor: float = _field(
        LOG_MSE_FLOOR,
        "losses",
        "Added to each crop's MSE by the log_mse loss (1e-4: 46 dB); larger leans toward MSE.",
    )
    harm_weight: float = _field(
        0.0,
        "losses",
        "Weight of the harm term: each crop's dB lost against its blurred input (0: none).",
    )
    adversarial_weight: float = _field(1.0, "losses", "Weight of -D(fake) after the warm-up.")
    gp_weight: float = _field(10.0, "losses", "Gradient penalty weight.")
    critic_steps: int = _field(5, "losses", "Critic updates per generator update.")
    # ------------------------------------------------------------ schedule
    epochs: int = _field(300, "schedule", "Epochs (paper: 150 constant + 150 decaying).")
    steps_per_epoch: int | None = _field(
        None, "schedule", "Generator steps per epoch (default: one pass over the images)."
    )
    warmup_epochs: int = _field(0, "schedule", "Content-only epochs (no critic) first.")
    learning_rate: float = _field(1e-4, "schedule", "Adam learning rate before the decay.")
    max_cpu_minutes: float | None = _field(
        None, "schedule", "Stop after the epoch that spends this much process CPU time."
    )
    # ------------------------------------------------- validation, outputs
    validation_steps: int | None = _field(None, "validation", "Validation batches (default: all).")
    validation_photos: tuple[str, ...] = _field(
        (),
        "validation",
        "Folders holding the fixed validation set's photos (keras_deblur.validation): score it "
        "and keep the generator with the best val_score (default: none, best val_psnr).",
    )
    validation_every: int = _field(
        1, "validation", "Validate (val photos and fixed set) every N epochs and at the last."
    )
    num_samples: int = _field(3, "validation", "Before/after sample images per epoch.")
    snapshots: bool = _field(False, "validation", "Save the generator after every epoch.")
    keep_checkpoints: int = _field(3, "validation", "Checkpoints to keep.")
    # ------------------------------------------------------------- runtime
    strategy: str = _field("default", "runtime", "tf.distribute strategy.", choices=STRATEGIES)
    tpu_address: str = _field("", "runtime", "TPU address for strategy=tpu.")
    precision: str = _field(
        "auto",
        "runtime",
        "Compute precision; 'auto' picks mixed_bfloat16 on TPUs and on CPUs with AMX or "
        "AVX512-BF16 (without XLA), mixed_float16 on GPUs, else float32.",
        choices=PRECISIONS,
    )
    jit_compile: bool = _field(False, "runtime", "XLA-compile the training step.")
    seed: int = _field(0, "runtime", "Seeds weights, data and sampling.")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):  # JSON and flags give lists; a frozen recipe keeps tuples
                object.__setattr__(self, field.name, tuple(value))
        if self.vgg_weights in ("none", "None"):
            object.__setattr__(self, "vgg_weights", None)
        for field in dataclasses.fields(self):
            _check_type(field, getattr(self, field.name))
        _check_values(self)

    def replace(self, **changes):
        """A copy with `changes` applied; unknown names are a one-line error."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Plain JSON-ready values (tuples as lists)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values, source="recipe"):
        """The recipe holding `values`; missing fields take the defaults."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: a recipe is a JSON object of fields")
        _check_names(values, source)
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    def to_json(self, path):
        """Writes the recipe to `path` as indented JSON."""
        with open(path, "w") as file:
            json.dump(self.to_dict(), file, indent=2)
            file.write("\n")

    @classmethod
    def from_json(cls, path):
        """Reads a recipe written by `to_json` (a run's `config.json`).

        Raises:
            FileNotFoundError: no file at `path`.
            ValueError: one line naming `path`: not JSON, not an object of
                known fields, or a value out of its field's type or range.
        """
        try:
            with open(path) as file:
                values = json.load(file)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: recipe not found") from None
        except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(values, source=path)

    def blur_options(self):
        """Keyword arguments of `datasets.synthetic_dataset` for the synthetic blur."""
        options = {}
        if self.blur_exposures:
            options["exposure"] = self.blur_exposures
        if self.blur_fractions:
            options["fraction"] = self.blur_fractions
        for name in _BLUR_RATIOS:
            if getattr(self, name):
                options[name] = getattr(self, name)
        return options


FIELD_NAMES = tuple(field.name for field in dataclasses.fields(Recipe))
_TYPES = typing.get_type_hints(Recipe)


def _check_names(values, source="recipe"):
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(
            f"{source}: unknown recipe field {unknown[0]!r}; "
            f"the fields are {', '.join(FIELD_NAMES)}"
        )


def field_type(name):
    """The type a field holds when it is not None: int, float, bool, str or tuple."""
    annotation = _TYPES[name]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return tuple if typing.get_origin(annotation) is tuple else annotation


def is_optional(name):
    """Whether the field may be None (its flag then accepts `none`)."""
    annotation = _TYPES[name]
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and (
        type(None) in typing.get_args(annotation)
    )


def _admits(annotation, value):
    """Whether `value` fits the type annotation (bool is no int, an int is a float)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_admits(arg, value) for arg in typing.get_args(annotation))
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        return isinstance(value, tuple) and all(_admits(item, v) for v in value)
    if annotation is type(None):
        return value is None
    if isinstance(value, bool):
        return annotation is bool
    if annotation is float:
        return isinstance(value, int | float)
    return isinstance(value, annotation)


def _items(value):
    return value if isinstance(value, tuple) else (value,)


def _check_type(field, value):
    if not _admits(_TYPES[field.name], value):
        annotation = _TYPES[field.name]
        expected = annotation.__name__ if isinstance(annotation, type) else str(annotation)
        raise ValueError(f"{field.name} must be {expected}. Received: {field.name}={value!r}")
    if any(isinstance(v, float) and not math.isfinite(v) for v in _items(value)):
        # JSON as Python reads it has NaN and Infinity; no field means anything by them.
        raise ValueError(f"{field.name} must be finite. Received: {field.name}={value!r}")
    choices = field.metadata["choices"]
    if choices and value not in choices:
        raise ValueError(
            f"{field.name} must be one of {list(choices)}. Received: {field.name}={value!r}"
        )


def _at_least(recipe, name, minimum, allow_none=False):
    value = getattr(recipe, name)
    if value is None and allow_none:
        return
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}. Received: {name}={value}")


def _check_values(recipe):
    """Ranges and relations between fields; files and folders are checked by `train`."""
    for name in ("crop_size", "batch_size", "epochs", "critic_steps", "keep_checkpoints"):
        _at_least(recipe, name, 1)
    for name in ("steps_per_epoch", "validation_steps", "num_filters", "max_pixels"):
        _at_least(recipe, name, 1, allow_none=True)
    _at_least(recipe, "num_res_blocks", 0, allow_none=True)
    _at_least(recipe, "validation_every", 1)
    _at_least(recipe, "num_samples", 0)
    for name in (
        "learning_rate",
        "content_weight",
        "pixel_weight",
        "harm_weight",
        "adversarial_weight",
    ):
        _at_least(recipe, name, 0)
    _at_least(recipe, "gp_weight", 0)
    if recipe.crop_size % 4:
        raise ValueError(
            f"crop_size must be a multiple of 4. Received: crop_size={recipe.crop_size}"
        )
    if not 0 <= recipe.warmup_epochs <= recipe.epochs:
        raise ValueError(
            f"warmup_epochs must be in [0, epochs={recipe.epochs}]. "
            f"Received: warmup_epochs={recipe.warmup_epochs}"
        )
    if not 0.0 <= recipe.unblurred_ratio < 1.0:
        raise ValueError(
            f"unblurred_ratio must be in [0, 1). Received: unblurred_ratio={recipe.unblurred_ratio}"
        )
    for name in ("procedural_ratio", *_BLUR_RATIOS):  # unblurred_ratio's stricter bound is above
        if not 0.0 <= getattr(recipe, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]. Received: {name}={getattr(recipe, name)}")
    defocus = (recipe.depth_of_field_ratio, recipe.soft_ratio, recipe.misfocus_ratio)
    if sum(defocus) > 1.0:
        raise ValueError(
            "depth_of_field_ratio + soft_ratio + misfocus_ratio must be at most 1. Received: "
            + " + ".join(str(share) for share in defocus)
        )
    if not 0.0 <= recipe.synthetic_ratio <= 1.0:
        raise ValueError(
            f"synthetic_ratio must be in [0, 1]. Received: synthetic_ratio={recipe.synthetic_ratio}"
        )
    for name in ("max_cpu_minutes", "log_mse_floor"):
        value = getattr(recipe, name)
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be > 0. Received: {name}={value}")
    for name in ("blur_exposures", "blur_fractions"):
        if getattr(recipe, name) == ():
            raise ValueError(f"{name} needs at least one value, or None for the default mix")
    for fraction in recipe.blur_fractions or ():
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"blur_fractions must be in (0, 1]. Received: {fraction}")


# The paper's model and losses with a schedule short enough for a 2-core CPU:
# `python -m keras_deblur.train` with no flags (README's first command).
QUICK = Recipe(epochs=3, steps_per_epoch=10, crop_size=128)
# The paper on GoPro (pass --paired_dirs); XLA: 10.9 s per step on 2 CPU cores,
# 1.19x the PyTorch reference in the same run (bench/bench_train.py, AVX2); its
# one-off compilation (~45 s) only pays off over a long run.
PAPER = Recipe(jit_compile=True)
# The shipped mobile model's recipe (keras_deblur/pretrained/MODEL_CARD.md), the
# winner of its design, loss and data study: the pixel-(un)shuffle generator
# with channel attention, trained on each crop's error in dB (log-MSE) so that
# no crop dominates and sharp content is left alone; short and long shakes as
# the validation has them, 10% unblurred pairs, 30% dead-leaves images,
# augmentation, and sensor noise and JPEG after the blur on a fifth of the pairs
# each. Content-only: the GAN phase is not in the shipped weights yet.
MOBILE = Recipe(
    architecture="mobile",
    epochs=400,
    warmup_epochs=400,
    steps_per_epoch=100,
    crop_size=128,
    batch_size=8,
    learning_rate=3e-4,
    content_weight=0.0,
    vgg_weights=None,
    pixel_weight=1.0,
    pixel_loss="log_mse",
    blur_exposures=(None, None, None, 0.005),
    blur_fractions=(1.0,),
    unblurred_ratio=0.1,
    procedural_ratio=0.3,
    augment=True,
    noise_ratio=0.2,
    jpeg_ratio=0.2,
    validation_every=5,
    # XLA made this design's step 2.7x slower on AVX-512 (0.48 instead of 0.18 s).
    jit_compile=False,
)
# The first shipped mobile model (v1): a content-only warm-up on a pixel MSE x 100,
# then one epoch of DeblurGAN's WGAN-GP (adversarial 1 : content 100); blur from
# almost none to long shakes, 20% unblurred.
MOBILE_V1 = Recipe(
    architecture="mobile_v1",
    epochs=61,
    warmup_epochs=60,
    steps_per_epoch=50,
    crop_size=128,
    batch_size=8,
    learning_rate=3e-4,
    content_weight=0.0,
    pixel_weight=100.0,
    vgg_weights=None,
    blur_exposures=(None, None, None, 0.01, 0.007, 0.005, 0.003),
    blur_fractions=(0.1, 0.5, 1.0, 1.0),
    unblurred_ratio=0.2,
    # 0.60 instead of 0.75 s per warm-up step (batch 8 of 128x128, 2 CPU cores, AVX2).
    jit_compile=True,
)
PRESETS = {"quick": QUICK, "paper": PAPER, "mobile": MOBILE, "mobile_v1": MOBILE_V1}


def get_preset(name):
    """The preset recipe called `name`; an unknown name is a one-line error listing them."""
    if name not in PRESETS:
        raise ValueError(f"Unknown recipe preset {name!r}; the presets are {', '.join(PRESETS)}")
    return PRESETS[name]
