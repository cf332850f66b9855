"""The PyTorch converter reproduces the reference DeblurGAN networks numerically.

The PyTorch models below are written from the architecture description of
the reference code (commit a6f4ad0): same `nn.Sequential` positions, hence the
same state-dict keys, as `ResnetGenerator` and `NLayerDiscriminator`.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from keras_deblur import convert_torch  # noqa: E402
from keras_deblur.convert_torch import (  # noqa: E402
    convert_checkpoint,
    convert_critic_state_dict,
    convert_generator_state_dict,
    load_torch_checkpoint,
)

TOLERANCE = 1e-4
SIZES = [(64, 64), (68, 92)]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _norm(channels):
    return nn.InstanceNorm2d(channels, affine=False)


class ReferenceResidualBlock(nn.Module):
    def __init__(self, channels, use_dropout):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels)]
        layers.append(nn.ReLU(True))
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ReferenceGenerator(nn.Module):
    """ResnetGenerator with InstanceNorm (no affine), conv biases and learn_residual."""

    def __init__(self, ngf=64, n_blocks=9, use_dropout=True):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), _norm(ngf), nn.ReLU(True)]
        for channels in (ngf, 2 * ngf):
            layers += [
                nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
                _norm(2 * channels),
                nn.ReLU(True),
            ]
        layers += [ReferenceResidualBlock(4 * ngf, use_dropout) for _ in range(n_blocks)]
        for channels in (4 * ngf, 2 * ngf):
            layers += [
                nn.ConvTranspose2d(
                    channels, channels // 2, 3, stride=2, padding=1, output_padding=1
                ),
                _norm(channels // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return torch.clamp(x + self.model(x), -1, 1)


class ReferenceCritic(nn.Module):
    """NLayerDiscriminator with InstanceNorm (no affine) and no sigmoid."""

    def __init__(self, ndf=64, n_layers=3):
        super().__init__()
        layers = [nn.Conv2d(3, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True)]
        previous = ndf
        for layer in range(1, n_layers + 1):
            filters = ndf * min(2**layer, 8)
            stride = 2 if layer < n_layers else 1
            layers += [
                nn.Conv2d(previous, filters, 4, stride=stride, padding=2),
                _norm(filters),
                nn.LeakyReLU(0.2, True),
            ]
            previous = filters
        layers.append(nn.Conv2d(previous, 1, 4, stride=1, padding=2))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def _randomize(module, seed):
    """Non-trivial weights: fan-in scaled normal kernels and N(0, 0.1) biases.

    Scaling by fan-in keeps the tanh mostly unsaturated, so that a wrong
    weight layout shows in the outputs instead of vanishing in +-1.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.ConvTranspose2d):
                fan_in = layer.weight.shape[1] * layer.weight[0, 0].numel()
            elif isinstance(layer, nn.Conv2d):
                fan_in = layer.weight[0].numel()
            else:
                continue
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) / fan_in**0.5)
            layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))
    return module.eval()


def _random_images(height, width, seed):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.0, 0.5, (2, height, width, 3)), -1, 1).astype("float32")


def _torch_outputs(module, images):
    with torch.no_grad():
        outputs = module(torch.from_numpy(images.transpose(0, 3, 1, 2)))
    return outputs.numpy().transpose(0, 2, 3, 1)


def _keras_outputs(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def _state_dict(module):
    return {key: value.clone() for key, value in module.state_dict().items()}


@pytest.fixture(scope="module")
def reference_generator():
    return _randomize(ReferenceGenerator(ngf=64, n_blocks=9, use_dropout=True), seed=1)


@pytest.fixture(scope="module")
def small_generator():
    return _randomize(ReferenceGenerator(ngf=8, n_blocks=2, use_dropout=True), seed=2)


@pytest.fixture(scope="module")
def reference_critic():
    return _randomize(ReferenceCritic(ndf=64, n_layers=3), seed=3)


def test_full_generator_matches_reference_pytorch_on_two_sizes(reference_generator):
    generator = convert_generator_state_dict(_state_dict(reference_generator))

    assert generator.count_params() == 11_378_179
    for seed, (height, width) in enumerate(SIZES):
        images = _random_images(height, width, seed)
        expected = _torch_outputs(reference_generator, images)
        actual = _keras_outputs(generator, images)
        # A saturated output would hide layout errors: most values must be inside (-1, 1).
        assert np.mean(np.abs(expected) < 0.99) > 0.5
        difference = np.max(np.abs(actual - expected))
        print(f"generator {height}x{width}: max abs difference {difference:.3g}")
        assert difference <= TOLERANCE, f"{height}x{width}: max abs difference {difference}"


def test_generator_without_dropout_is_converted_with_the_shifted_block_keys():
    reference = _randomize(ReferenceGenerator(ngf=8, n_blocks=2, use_dropout=False), seed=4)
    state_dict = _state_dict(reference)
    assert "model.10.conv_block.5.weight" in state_dict

    generator = convert_generator_state_dict(state_dict)

    # Inferred from the state dict: 2 blocks, 8 filters, trained without dropout.
    assert generator.get_layer("head_conv").filters == 8
    assert "res_block_2_conv_2" in [layer.name for layer in generator.layers]
    assert "res_block_3_conv_1" not in [layer.name for layer in generator.layers]
    assert "res_block_1_dropout" not in [layer.name for layer in generator.layers]
    images = _random_images(68, 92, seed=5)
    difference = np.max(
        np.abs(_keras_outputs(generator, images) - _torch_outputs(reference, images))
    )
    assert difference <= TOLERANCE


def test_data_parallel_prefix_and_old_instance_norm_buffers_are_accepted(small_generator):
    state_dict = {f"module.{key}": value for key, value in _state_dict(small_generator).items()}
    # PyTorch < 0.4 saved running statistics for every InstanceNorm, as in the
    # published weights: model.2 (head), model.11.conv_block.7 (second norm of a block).
    for norm in ("model.2", "model.11.conv_block.2", "model.11.conv_block.7", "model.13"):
        state_dict[f"module.{norm}.running_mean"] = torch.full((1,), 5.0)
        state_dict[f"module.{norm}.running_var"] = torch.full((1,), 7.0)

    generator = convert_generator_state_dict(state_dict)

    images = _random_images(64, 64, seed=6)
    difference = np.max(
        np.abs(_keras_outputs(generator, images) - _torch_outputs(small_generator, images))
    )
    assert difference <= TOLERANCE


def test_checkpoint_with_a_missing_key_is_refused_naming_it(small_generator):
    state_dict = _state_dict(small_generator)
    del state_dict["model.12.bias"]  # bias of the first transposed conv

    with pytest.raises(ValueError, match=r"missing keys: model\.12\.bias$") as error:
        convert_generator_state_dict(state_dict)
    assert "\n" not in str(error.value)


def test_checkpoint_with_a_wrong_shape_is_refused_naming_both_shapes(small_generator):
    state_dict = _state_dict(small_generator)
    state_dict["model.10.conv_block.6.weight"] = torch.zeros(32, 16, 3, 3)

    with pytest.raises(
        ValueError,
        match=r"wrong shapes: model\.10\.conv_block\.6\.weight has shape \(32, 16, 3, 3\), "
        r"expected \(32, 32, 3, 3\)$",
    ):
        convert_generator_state_dict(state_dict)


def test_affine_norm_weights_are_refused_as_unexpected_keys(small_generator):
    state_dict = _state_dict(small_generator)
    state_dict["model.2.weight"] = torch.ones(8)
    state_dict["model.2.bias"] = torch.zeros(8)

    with pytest.raises(ValueError, match=r"unexpected keys: model\.2\.bias, model\.2\.weight$"):
        convert_generator_state_dict(state_dict)


def test_critic_checkpoint_is_refused_as_a_generator(reference_critic):
    with pytest.raises(ValueError, match=r"not a reference ResnetGenerator state dict"):
        convert_generator_state_dict(_state_dict(reference_critic))


def test_critic_matches_reference_pytorch_on_two_sizes(reference_critic):
    critic = convert_critic_state_dict(_state_dict(reference_critic))

    assert critic.count_params() == 2_764_737
    for seed, (height, width) in enumerate(SIZES):
        images = _random_images(height, width, seed)
        expected = _torch_outputs(reference_critic, images)
        actual = _keras_outputs(critic, images)
        assert actual.shape == expected.shape
        difference = np.max(np.abs(actual - expected))
        print(f"critic {height}x{width}: max abs difference {difference:.3g}")
        assert difference <= TOLERANCE, f"{height}x{width}: max abs difference {difference}"


def test_critic_with_a_missing_layer_is_refused(reference_critic):
    state_dict = _state_dict(reference_critic)
    del state_dict["model.5.weight"]

    with pytest.raises(ValueError, match=r"NLayerDiscriminator.*missing keys: model\.5\.weight"):
        convert_critic_state_dict(state_dict)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_transposed_conv_grid_equals_pytorch_only_with_valid_and_crop(padding):
    """Keras "valid" minus the first row/col is PyTorch's grid; "same" is shifted."""
    reference = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)
    _randomize(reference, seed=7)
    images = np.random.default_rng(8).normal(0, 0.5, (2, 5, 7, 4)).astype("float32")
    inputs = keras.Input((None, None, 4))
    upsample = keras.layers.Conv2DTranspose(3, 3, strides=2, padding=padding)
    outputs = upsample(inputs)
    if padding == "valid":
        outputs = keras.layers.Cropping2D(((1, 0), (1, 0)))(outputs)
    model = keras.Model(inputs, outputs)
    state = reference.state_dict()
    upsample.set_weights(
        [convert_torch._conv_kernel(state["weight"].numpy()), state["bias"].numpy()]
    )

    expected = _torch_outputs(reference, images)
    actual = _keras_outputs(model, images)

    assert actual.shape == expected.shape == (2, 10, 14, 3)
    difference = np.max(np.abs(actual - expected))
    if padding == "valid":
        assert difference <= 1e-6
    else:
        assert difference > 0.1
        # "same" keeps rows/cols 0..2n-1 of the full grid, PyTorch 1..2n.
        np.testing.assert_allclose(actual[:, 1:, 1:], expected[:, :-1, :-1], atol=1e-6)


def test_load_torch_checkpoint_unwraps_and_returns_numpy(tmp_path, small_generator):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": small_generator.state_dict(), "epoch": 3}, path)

    state_dict = load_torch_checkpoint(path)

    assert list(state_dict) == list(small_generator.state_dict())
    assert all(isinstance(value, np.ndarray) for value in state_dict.values())
    np.testing.assert_array_equal(
        state_dict["model.1.weight"], small_generator.state_dict()["model.1.weight"].numpy()
    )


def test_load_torch_checkpoint_reads_the_legacy_non_zip_format(tmp_path, small_generator):
    # The published weights predate PyTorch 1.6's zip format.
    path = tmp_path / "legacy.pth"
    torch.save(small_generator.state_dict(), path, _use_new_zipfile_serialization=False)

    state_dict = load_torch_checkpoint(path)

    np.testing.assert_array_equal(
        state_dict["model.12.weight"], small_generator.state_dict()["model.12.weight"].numpy()
    )


def test_load_torch_checkpoint_refuses_missing_and_non_state_dict_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.pth: no such checkpoint file"):
        load_torch_checkpoint(tmp_path / "absent.pth")

    not_a_state_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_state_dict)
    with pytest.raises(ValueError, match=r"list\.pth: not a state dict of tensors"):
        load_torch_checkpoint(not_a_state_dict)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.pth: cannot read as a PyTorch state dict"):
        load_torch_checkpoint(garbage)


def test_missing_torch_gives_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail

    with pytest.raises(ImportError, match=r"pip install torch"):
        load_torch_checkpoint(tmp_path / "latest_net_G.pth")


def test_convert_checkpoint_names_the_file_in_errors(tmp_path, reference_critic):
    path = tmp_path / "latest_net_D.pth"
    torch.save(reference_critic.state_dict(), path)

    with pytest.raises(ValueError, match=r"latest_net_D\.pth: not a reference ResnetGenerator"):
        convert_checkpoint(path, network="generator")


def _run_cli(*args):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "-m", "keras_deblur.convert_torch", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_writes_a_keras_file_that_loads_in_safe_mode_and_matches(tmp_path, small_generator):
    checkpoint = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{k}": v for k, v in small_generator.state_dict().items()}, checkpoint)
    output = tmp_path / "converted" / "G.keras"

    result = _run_cli(f"--checkpoint={checkpoint}", f"--output={output}")

    assert result.returncode == 0, result.stderr
    generator = keras.saving.load_model(output, safe_mode=True)
    images = _random_images(64, 64, seed=10)
    difference = np.max(
        np.abs(_keras_outputs(generator, images) - _torch_outputs(small_generator, images))
    )
    assert difference <= TOLERANCE


def test_cli_refuses_a_mismatching_checkpoint_with_one_line(tmp_path, small_generator):
    checkpoint = tmp_path / "latest_net_G.pth"
    torch.save(small_generator.state_dict(), checkpoint)
    output = tmp_path / "D.keras"

    result = _run_cli(f"--checkpoint={checkpoint}", f"--output={output}", "--network=critic")

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"convert_torch: {checkpoint}: ")
    assert "not a reference NLayerDiscriminator state dict: no key 'model.0.weight'" in last_line
    assert not output.exists()
