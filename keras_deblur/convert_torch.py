"""Converts reference DeblurGAN PyTorch checkpoints into our Keras networks.

The authors published their generator as a PyTorch `state_dict` of
`ResnetGenerator` (`latest_net_G.pth`); the critic `NLayerDiscriminator` is
saved the same way (`latest_net_D.pth`). Their keys are positions in an
`nn.Sequential` (`model.1.weight`, `model.10.conv_block.6.bias`, ...), so this
module rebuilds that index layout from the architecture and maps each
position onto our stable layer names.

PyTorch is needed only to read `.pth` files and is imported lazily:
`pip install torch --index-url https://download.pytorch.org/whl/cpu`.

Usage:
    python -m keras_deblur.convert_torch --checkpoint latest_net_G.pth --output G.keras
    python -m keras_deblur.convert_torch --checkpoint latest_net_D.pth --output D.keras \
        --network critic
"""

import logging
import os
import re
import sys

import numpy as np

from keras_deblur.cli import first_line
from keras_deblur.models import build_critic, build_generator

logger = logging.getLogger(__name__)

TORCH_INSTALL_HINT = (
    "reading PyTorch checkpoints needs torch, an optional dependency: "
    "pip install torch --index-url https://download.pytorch.org/whl/cpu"
)

# `nn.InstanceNorm2d` of PyTorch < 0.4 stored running statistics even with
# affine=False (the published DeblurGAN weights have them). They were never
# used at inference (instance norm always normalises by the image's own
# statistics), so they are dropped, but only at normalization positions.
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
# Wrappers some training scripts put around the state dict.
_WRAPPER_KEYS = ("state_dict", "model")
_DATA_PARALLEL_PREFIX = "module."
_MAX_KEYS_IN_MESSAGE = 6

# Sequential positions of the reference `ResnetGenerator` up to its residual
# blocks: ReflectionPad, Conv, Norm, ReLU, then (Conv, Norm, ReLU) twice.
_GENERATOR_HEAD = 1
_GENERATOR_DOWN = (4, 7)
_GENERATOR_FIRST_BLOCK = 10
# Inside a `ResnetBlock.conv_block`: Pad, Conv, Norm, ReLU, [Dropout], Pad,
# Conv, Norm. The optional Dropout shifts the second conv and norm by one.
_BLOCK_CONV_1 = 1
_BLOCK_CONV_2 = {False: 5, True: 6}


def _to_numpy(value):
    """A torch tensor or array-like as a float32 numpy array, without importing torch."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def _conv_kernel(weight):
    """PyTorch conv weights to a Keras kernel.

    `Conv2d` stores (out, in, kH, kW) and Keras `Conv2D` wants (kH, kW, in,
    out). `ConvTranspose2d` stores (in, out, kH, kW) and Keras
    `Conv2DTranspose` wants (kH, kW, out, in): the same axis permutation, and
    neither library flips the kernel (checked against PyTorch in the tests).
    """
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)))


def _strip_data_parallel_prefix(state_dict):
    return {
        key[len(_DATA_PARALLEL_PREFIX) :] if key.startswith(_DATA_PARALLEL_PREFIX) else key: value
        for key, value in state_dict.items()
    }


def _format_keys(keys):
    keys = sorted(keys, key=_natural_sort_key)
    shown = ", ".join(keys[:_MAX_KEYS_IN_MESSAGE])
    if len(keys) > _MAX_KEYS_IN_MESSAGE:
        shown += f" and {len(keys) - _MAX_KEYS_IN_MESSAGE} more"
    return shown


def _natural_sort_key(key):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


class _Layout:
    """Expected PyTorch keys of one network: conv weights and their Keras layers."""

    def __init__(self, description):
        self.description = description
        self.convs = {}  # torch prefix -> Keras layer name
        self.shapes = {}  # torch key -> expected shape
        self.norm_prefixes = set()

    def add_conv(self, prefix, layer_name, weight_shape, transposed=False):
        self.convs[prefix] = layer_name
        self.shapes[f"{prefix}.weight"] = tuple(weight_shape)
        # Conv2d weights are (out, in, kH, kW), ConvTranspose2d ones (in, out, kH, kW).
        self.shapes[f"{prefix}.bias"] = (weight_shape[1] if transposed else weight_shape[0],)

    def add_norm(self, prefix):
        self.norm_prefixes.add(prefix)

    def _ignorable(self):
        return {f"{prefix}.{buffer}" for prefix in self.norm_prefixes for buffer in _NORM_BUFFERS}

    def check(self, state_dict):
        """One-line ValueError on missing/unexpected keys or bad shapes."""
        expected_shapes = self.shapes
        ignorable = self._ignorable()
        missing = set(expected_shapes) - set(state_dict)
        unexpected = set(state_dict) - set(expected_shapes) - ignorable
        wrong_shapes = [
            f"{key} has shape {tuple(np.shape(state_dict[key]))}, expected {shape}"
            for key, shape in sorted(
                expected_shapes.items(), key=lambda item: _natural_sort_key(item[0])
            )
            if key in state_dict and tuple(np.shape(state_dict[key])) != shape
        ]
        problems = []
        if missing:
            problems.append(f"missing keys: {_format_keys(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_format_keys(unexpected)}")
        if wrong_shapes:
            shown = "; ".join(wrong_shapes[:_MAX_KEYS_IN_MESSAGE])
            if len(wrong_shapes) > _MAX_KEYS_IN_MESSAGE:
                shown += f" and {len(wrong_shapes) - _MAX_KEYS_IN_MESSAGE} more"
            problems.append(f"wrong shapes: {shown}")
        if problems:
            raise ValueError(
                f"checkpoint does not match the reference {self.description}: "
                + "; ".join(problems)
            )

    def assign(self, model, state_dict):
        """Sets the conv weights of `model` from a checked `state_dict`."""
        for prefix, layer_name in self.convs.items():
            kernel = _conv_kernel(_to_numpy(state_dict[f"{prefix}.weight"]))
            bias = _to_numpy(state_dict[f"{prefix}.bias"])
            model.get_layer(layer_name).set_weights([kernel, bias])
        logger.info(
            "Converted %s; ignored %d InstanceNorm running-stat buffers.",
            self.description,
            len(self._ignorable() & set(state_dict)),
        )


def _weight_shape(state_dict, key, network):
    if key not in state_dict:
        raise ValueError(
            f"not a reference {network} state dict: no key {key!r} "
            f"(first keys: {_format_keys(list(state_dict)[:_MAX_KEYS_IN_MESSAGE])})"
        )
    shape = tuple(np.shape(state_dict[key]))
    if len(shape) != 4:
        raise ValueError(f"{key} has shape {shape}, expected a 4-D conv weight")
    return shape


def _generator_layout(num_filters, num_res_blocks, with_dropout):
    description = (
        f"ResnetGenerator (num_filters={num_filters}, num_res_blocks={num_res_blocks}, "
        f"{'with' if with_dropout else 'without'} dropout, InstanceNorm without affine)"
    )
    layout = _Layout(description)
    layout.add_conv(f"model.{_GENERATOR_HEAD}", "head_conv", (num_filters, 3, 7, 7))
    layout.add_norm(f"model.{_GENERATOR_HEAD + 1}")
    for level, index in enumerate(_GENERATOR_DOWN, start=1):
        channels_in = num_filters * 2 ** (level - 1)
        layout.add_conv(
            f"model.{index}", f"down_{level}_conv", (2 * channels_in, channels_in, 3, 3)
        )
        layout.add_norm(f"model.{index + 1}")
    channels = num_filters * 4
    conv_2 = _BLOCK_CONV_2[with_dropout]
    for block in range(num_res_blocks):
        prefix = f"model.{_GENERATOR_FIRST_BLOCK + block}.conv_block"
        name = f"res_block_{block + 1}"
        for conv_index, suffix in ((_BLOCK_CONV_1, 1), (conv_2, 2)):
            layout.add_conv(
                f"{prefix}.{conv_index}", f"{name}_conv_{suffix}", (channels,) * 2 + (3, 3)
            )
            layout.add_norm(f"{prefix}.{conv_index + 1}")
    # After the blocks: (ConvTranspose, Norm, ReLU) twice, ReflectionPad, Conv, Tanh.
    index = _GENERATOR_FIRST_BLOCK + num_res_blocks
    for level in (1, 2):
        channels_in = num_filters * 2 ** (3 - level)
        layout.add_conv(
            f"model.{index}", f"up_{level}_conv", (channels_in, channels_in // 2, 3, 3), True
        )
        layout.add_norm(f"model.{index + 1}")
        index += 3
    layout.add_conv(f"model.{index + 1}", "tail_conv", (3, num_filters, 7, 7))
    return layout


def _critic_layout(num_filters, num_layers):
    layout = _Layout(
        f"NLayerDiscriminator (num_filters={num_filters}, num_layers={num_layers}, "
        "InstanceNorm without affine)"
    )
    layout.add_conv("model.0", "layer_1_conv", (num_filters, 3, 4, 4))
    # Then (Conv, Norm, LeakyReLU) per layer from position 2, and the score conv.
    index = 2
    previous = num_filters
    for layer in range(2, num_layers + 2):
        filters = num_filters * min(2 ** (layer - 1), 8)
        layout.add_conv(f"model.{index}", f"layer_{layer}_conv", (filters, previous, 4, 4))
        layout.add_norm(f"model.{index + 1}")
        previous = filters
        index += 3
    layout.add_conv(f"model.{index}", "score_conv", (1, previous, 4, 4))
    return layout


def convert_generator_state_dict(
    state_dict,
    global_skip=True,
    dropout_rate=None,
    dropout_at_inference=False,
    image_shape=(None, None, 3),
):
    """Builds our generator with the weights of a reference `ResnetGenerator`.

    The number of residual blocks, the filters of the first conv and whether
    the checkpoint was trained with dropout (which shifts the keys inside each
    residual block) are read from the state dict. Keys may carry the
    `module.` prefix of `nn.DataParallel`; the unused running statistics that
    PyTorch < 0.4 stored for InstanceNorm are ignored. Anything else that does
    not match the reference architecture (BatchNorm or affine InstanceNorm
    checkpoints, other networks) is refused.

    Args:
        state_dict: mapping of str to torch tensors or numpy arrays, as saved
            by the reference code (see `load_torch_checkpoint`).
        global_skip: bool. Output `clip(input + G(input), -1, 1)`, the
            reference's `--learn_residual`, with which the published weights
            were trained. The state dict cannot tell. Defaults to True.
        dropout_rate: float or None. Dropout of our residual blocks (matters
            for fine-tuning only). Defaults to None: 0.5 if the checkpoint was
            trained with dropout, else 0.
        dropout_at_inference: bool. Keep dropout on at inference as the
            reference test script does (random outputs). Defaults to False.
        image_shape: tuple. Input shape without the batch axis. Defaults to
            `(None, None, 3)`.

    Returns:
        A `keras.Model` from `build_generator` mapping images
        `(batch, height, width, 3)` in [-1, 1] to images in [-1, 1].

    Raises:
        ValueError: one line naming the missing or unexpected keys and the
            mismatched shapes.

    Example:
    >>> generator = convert_generator_state_dict(load_torch_checkpoint("latest_net_G.pth"))
    """
    state_dict = _strip_data_parallel_prefix(state_dict)
    head_shape = _weight_shape(state_dict, f"model.{_GENERATOR_HEAD}.weight", "ResnetGenerator")
    num_filters = head_shape[0]
    block_indices = {
        int(match.group(1))
        for match in (re.match(r"model\.(\d+)\.conv_block\.", key) for key in state_dict)
        if match
    }
    num_res_blocks = len(block_indices)
    # Only a conv has a weight at that position: without dropout it holds the
    # second norm, which may carry old running statistics but no weight.
    with_dropout = any(
        re.fullmatch(rf"model\.\d+\.conv_block\.{_BLOCK_CONV_2[True]}\.weight", key)
        for key in state_dict
    )
    layout = _generator_layout(num_filters, num_res_blocks, with_dropout)
    layout.check(state_dict)

    if dropout_rate is None:
        dropout_rate = 0.5 if with_dropout else 0.0
    model = build_generator(
        num_filters=num_filters,
        num_res_blocks=num_res_blocks,
        dropout_rate=dropout_rate,
        dropout_at_inference=dropout_at_inference,
        global_skip=global_skip,
        image_shape=image_shape,
    )
    layout.assign(model, state_dict)
    return model


def convert_critic_state_dict(state_dict, image_shape=(None, None, 3)):
    """Builds our critic with the weights of a reference `NLayerDiscriminator`.

    `num_layers` (the reference's `n_layers_D`, 3 for DeblurGAN) and the
    filters of the first conv are read from the state dict. Keys may carry
    the `module.` prefix; InstanceNorm running statistics of PyTorch < 0.4
    are ignored; anything else that does not match is refused.

    Args:
        state_dict: mapping of str to torch tensors or numpy arrays.
        image_shape: tuple. Input shape without the batch axis. Defaults to
            `(None, None, 3)`.

    Returns:
        A `keras.Model` from `build_critic` mapping images
        `(batch, height, width, 3)` in [-1, 1] to patch scores
        `(batch, height', width', 1)`.

    Raises:
        ValueError: one line naming the missing or unexpected keys and the
            mismatched shapes.
    """
    state_dict = _strip_data_parallel_prefix(state_dict)
    first_shape = _weight_shape(state_dict, "model.0.weight", "NLayerDiscriminator")
    num_filters = first_shape[0]
    conv_count = sum(
        1
        for key in state_dict
        if re.fullmatch(r"model\.\d+\.weight", key) and len(np.shape(state_dict[key])) == 4
    )
    num_layers = conv_count - 2
    if num_layers < 1:
        raise ValueError(
            f"not a reference NLayerDiscriminator state dict: {conv_count} conv weights, "
            "expected at least 3"
        )
    layout = _critic_layout(num_filters, num_layers)
    layout.check(state_dict)
    model = build_critic(num_filters=num_filters, num_layers=num_layers, image_shape=image_shape)
    layout.assign(model, state_dict)
    return model


def _import_torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError(TORCH_INSTALL_HINT) from error
    return torch


def load_torch_checkpoint(path):
    """Reads a PyTorch state dict as numpy arrays, without running pickled code.

    Uses `torch.load(weights_only=True)`, which refuses files that would
    execute arbitrary code when unpickled (for instance a whole pickled
    `nn.Module`). A state dict wrapped in a dict under "state_dict" or
    "model" is unwrapped.

    Args:
        path: str. A `.pth` file saved with `torch.save(net.state_dict())`.

    Returns:
        A dict of str to float32 numpy arrays, in the file's key order.

    Raises:
        ImportError: torch is not installed (the message says how to).
        FileNotFoundError: no such file.
        ValueError: one line "path: problem" if the file is not a state dict.
    """
    torch = _import_torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable files
        raise ValueError(
            f"{path}: cannot read as a PyTorch state dict with weights_only=True "
            f"({type(error).__name__}: {first_line(error)})"
        ) from error
    for wrapper in _WRAPPER_KEYS:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    if not isinstance(checkpoint, dict) or not all(
        isinstance(value, torch.Tensor) for value in checkpoint.values()
    ):
        raise ValueError(
            f"{path}: not a state dict of tensors (found {type(checkpoint).__name__}); "
            "save it with torch.save(network.state_dict(), path)"
        )
    return {key: _to_numpy(value) for key, value in checkpoint.items()}


NETWORKS = {"generator": convert_generator_state_dict, "critic": convert_critic_state_dict}


def convert_checkpoint(path, network="generator", **options):
    """Loads a reference `.pth` checkpoint and converts it (errors name the file).

    Args:
        path: str. The PyTorch checkpoint.
        network: str. "generator" (`latest_net_G.pth`) or "critic"
            (`latest_net_D.pth`). Defaults to "generator".
        **options: passed to `convert_generator_state_dict` or
            `convert_critic_state_dict`.

    Returns:
        The converted `keras.Model`.
    """
    if network not in NETWORKS:
        raise ValueError(
            f"network must be one of {sorted(NETWORKS)}. Received: network={network!r}"
        )
    state_dict = load_torch_checkpoint(path)
    try:
        return NETWORKS[network](state_dict, **options)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def save_model(model, output):
    """Writes a `.keras` file, or only the weights for a `.weights.h5` path."""
    output = os.fspath(output)
    if not output.endswith((".keras", ".weights.h5")):
        raise ValueError(f"{output}: output must end with .keras or .weights.h5")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    if output.endswith(".weights.h5"):
        model.save_weights(output)
    else:
        model.save(output)


def _define_flags():
    from absl import flags

    flags.DEFINE_string("checkpoint", None, "Reference PyTorch checkpoint (.pth state dict).")
    flags.DEFINE_string("output", None, "Where to write the Keras model: .keras or .weights.h5.")
    flags.DEFINE_enum(
        "network", "generator", sorted(NETWORKS), "Which network the checkpoint holds."
    )
    flags.DEFINE_bool(
        "global_skip",
        True,
        "Generator only: output clip(input + G(input)), the reference's --learn_residual "
        "(the published weights need it).",
    )
    flags.DEFINE_bool(
        "dropout_at_inference",
        False,
        "Generator only: keep dropout on at inference like the reference test script.",
    )
    flags.mark_flags_as_required(["checkpoint", "output"])


def main(argv):
    """Converts --checkpoint into --output; exits with a one-line message on bad input."""
    from absl import app, flags
    from absl import logging as absl_logging

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    FLAGS = flags.FLAGS
    options = {}
    if FLAGS.network == "generator":
        options = {
            "global_skip": FLAGS.global_skip,
            "dropout_at_inference": FLAGS.dropout_at_inference,
        }
    try:
        # Check the output name before the slow part.
        if not FLAGS.output.endswith((".keras", ".weights.h5")):
            raise ValueError(f"{FLAGS.output}: output must end with .keras or .weights.h5")
        model = convert_checkpoint(FLAGS.checkpoint, FLAGS.network, **options)
        save_model(model, FLAGS.output)
    except (ImportError, OSError, ValueError) as error:
        sys.exit(f"convert_torch: {error}")
    absl_logging.info(
        "Wrote the %s to %s (%d parameters).", FLAGS.network, FLAGS.output, model.count_params()
    )


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
