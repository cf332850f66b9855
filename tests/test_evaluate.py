"""The evaluation CLI and library on tiny folders; the visual report it writes."""

import csv
import json
import os

import cv2
import numpy as np
import pytest
import skimage.data
from absl import flags

from keras_deblur import build_generator, evaluate, report
from keras_deblur.data.images import read_image, write_image
from keras_deblur.metrics import psnr, ssim
from keras_deblur.process_memory import SYSTEM_ALLOCATOR_ENV

FLAGS = flags.FLAGS


def _crop(index, height=48, width=56):
    photo = skimage.data.astronaut()
    top, left = 60 + 70 * index, 100 + 50 * index
    return photo[top : top + height, left : left + width].copy()


@pytest.fixture(scope="module")
def generator_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "G.keras"
    build_generator(num_res_blocks=1, num_filters=8).save(path)
    return str(path)


@pytest.fixture
def paired_dir(tmp_path):
    root = tmp_path / "pairs"
    for index, name in enumerate(["img_a", "img_b"]):
        sharp = _crop(index)
        write_image(root / "sharp" / f"{name}.png", sharp)
        write_image(root / "blur" / f"{name}.png", cv2.blur(sharp, (5, 5)))
    return root


@pytest.fixture
def sharp_paths(tmp_path):
    paths = []
    for index in range(3):
        path = tmp_path / "photos" / f"photo_{index}.png"
        write_image(path, _crop(index, 64, 64))
        paths.append(str(path))
    return paths


def _run_cli(args):
    """Runs `python -m keras_deblur.evaluate` in-process with these flags."""
    if "paired_dir" not in FLAGS:
        evaluate._define_flags()
    FLAGS.unparse_flags()
    FLAGS(["evaluate", *args])
    try:
        return evaluate.main([])
    finally:
        FLAGS.unparse_flags()


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_cli_on_a_tiny_paired_folder(generator_path, paired_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = _run_cli(
        [f"--weights={generator_path}", f"--paired_dir={paired_dir}", f"--output_dir={out}"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    rows = _read_csv(out / "per_image.csv")
    assert [row["name"] for row in rows] == ["img_a", "img_b"]
    for row in rows:
        sharp = read_image(paired_dir / "sharp" / f"{row['name']}.png")
        blurred = read_image(paired_dir / "blur" / f"{row['name']}.png")
        restored = read_image(out / "deblurred" / f"{row['name']}.png")
        assert restored.shape == sharp.shape
        assert float(row["blurred_psnr"]) == pytest.approx(psnr(sharp, blurred))
        assert float(row["blurred_ssim"]) == pytest.approx(ssim(sharp, blurred))
        assert float(row["deblurred_psnr"]) == pytest.approx(psnr(sharp, restored))
        assert float(row["psnr_gain"]) == pytest.approx(
            float(row["deblurred_psnr"]) - float(row["blurred_psnr"])
        )
        assert float(row["seconds"]) > 0
        assert "wiener_psnr" not in row  # the kernel of real blur is unknown

    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_images"] == 2
    assert summary["weights"] == generator_path and summary["source"]["kind"] == "paired"
    for method in ("blurred", "unsharp", "deblurred"):
        mean = np.mean([float(row[f"{method}_psnr"]) for row in rows])
        assert summary["methods"][method]["psnr"] == pytest.approx(mean)
    assert "wiener" not in summary["methods"]
    assert "blurred input" in printed and "unsharp masking" in printed and "DeblurGAN" in printed

    grid = read_image(out / "grids" / "img_a.jpg")
    assert grid.shape[1] == 3 * 56 + 2 * 4 and grid.shape[0] > 48
    page = (out / "index.html").read_text()
    assert "img_a" in page and "img_b" in page and 'src="grids/img_a.jpg"' in page


def test_gopro_layout_names_samples_by_scene(generator_path, tmp_path):
    root = tmp_path / "GOPRO" / "test"
    for scene in ("scene_1", "scene_2"):
        sharp = _crop(0, 32, 32)
        write_image(root / scene / "sharp" / "000001.png", sharp)
        write_image(root / scene / "blur" / "000001.png", cv2.blur(sharp, (3, 3)))
    summary = evaluate.evaluate(
        generator_path, tmp_path / "out", paired_dir=root, visual_report=False, progress=False
    )
    rows = _read_csv(summary["files"]["csv"])
    assert [row["name"] for row in rows] == ["scene_1__000001", "scene_2__000001"]
    assert not os.path.exists(tmp_path / "out" / "index.html")


def test_synthetic_blur_is_seeded_and_has_the_wiener_row(generator_path, sharp_paths, tmp_path):
    first = evaluate.evaluate(
        generator_path, tmp_path / "a", sharp=sharp_paths, seed=3, progress=False
    )
    again = evaluate.evaluate(
        generator_path, tmp_path / "b", sharp=sharp_paths, seed=3, limit=2, progress=False
    )
    other = evaluate.evaluate(
        generator_path, tmp_path / "c", sharp=sharp_paths, seed=4, limit=2, progress=False
    )
    rows, rows_again, rows_other = (_read_csv(s["files"]["csv"]) for s in (first, again, other))
    assert len(rows) == 3 and len(rows_again) == 2
    # Image i gets the same blur whatever the limit; another seed gives another blur.
    assert [r["blurred_psnr"] for r in rows_again] == [r["blurred_psnr"] for r in rows[:2]]
    assert [r["blurred_psnr"] for r in rows_other] != [r["blurred_psnr"] for r in rows[:2]]
    assert "wiener" in first["methods"]
    assert first["methods"]["wiener"]["psnr"] == pytest.approx(
        np.mean([float(r["wiener_psnr"]) for r in rows])
    )
    assert all(int(r["kernel_size"]) % 2 == 1 for r in rows)


def test_the_worst_image_stands_beside_every_mean(generator_path, sharp_paths, tmp_path):
    summary = evaluate.evaluate(
        generator_path, tmp_path / "a", sharp=sharp_paths, seed=3, progress=False
    )
    rows = _read_csv(summary["files"]["csv"])
    gains = {r["name"]: float(r["deblurred_psnr"]) - float(r["blurred_psnr"]) for r in rows}
    deblurred = summary["methods"]["deblurred"]
    assert deblurred["worst_gain"] == pytest.approx(min(gains.values()))
    assert deblurred["worst_gain_image"] == min(gains, key=gains.get)
    assert summary["methods"]["blurred"]["worst_gain"] == 0.0
    assert "worst" in evaluate.format_table(summary)


def test_memory_is_released_after_every_photo_and_malloc_chosen_before_loading(
    generator_path, sharp_paths, tmp_path, monkeypatch
):
    # As in the deblur CLI (keras_deblur/process_memory.py): TensorFlow reads the
    # allocator switch once, at the model's first tensors, so it must be set before.
    monkeypatch.delenv(SYSTEM_ALLOCATOR_ENV, raising=False)
    calls, switch_at_load = [], []
    monkeypatch.setattr(evaluate, "release_freed_memory", lambda: calls.append(1))
    load = evaluate.load_generator

    def spy(path):
        switch_at_load.append(os.environ.get(SYSTEM_ALLOCATOR_ENV))
        return load(path)

    monkeypatch.setattr(evaluate, "load_generator", spy)
    evaluate.evaluate(generator_path, tmp_path / "a", sharp=sharp_paths, progress=False)
    assert switch_at_load == ["1"]
    assert len(calls) == len(sharp_paths)


def test_unblurred_photos_are_scored_against_themselves(generator_path, sharp_paths, tmp_path):
    summary = evaluate.evaluate(
        generator_path, tmp_path / "a", sharp=sharp_paths, progress=False, unblurred=True
    )
    rows = _read_csv(summary["files"]["csv"])
    assert all(float(r["blurred_psnr"]) == float("inf") for r in rows)
    outputs = {r["name"]: float(r["deblurred_psnr"]) for r in rows}
    deblurred = summary["methods"]["deblurred"]
    # An untrained generator changes the photo: finite PSNRs, the lowest one named.
    assert deblurred["min_psnr"] == pytest.approx(min(outputs.values()))
    assert deblurred["min_psnr_image"] == min(outputs, key=outputs.get)
    assert "min PSNR" in evaluate.format_table(summary)
    assert summary["unblurred"] is True


def test_depth_of_field_makes_a_softer_reference_and_keeps_the_shake(
    generator_path, sharp_paths, tmp_path
):
    plain, soft = (
        evaluate.evaluate(
            generator_path,
            tmp_path / str(flag),
            sharp=sharp_paths,
            seed=3,
            progress=False,
            visual_report=False,
            unblurred=True,
            depth_of_field=flag,
        )
        for flag in (False, True)
    )
    # Unsharp masking of a defocused photo changes it less than of the sharp one.
    assert soft["methods"]["unsharp"]["psnr"] > plain["methods"]["unsharp"]["psnr"]
    assert soft["depth_of_field"] is True


def test_detection_columns_with_a_pluggable_detector(generator_path, paired_dir, tmp_path):
    def corner_box(image):
        # One box wherever the top-left corner is bright: deterministic and size-aware.
        return np.array([[0, 0, 16, 16]]) if image[:8, :8].mean() > 20 else np.zeros((0, 4))

    summary = evaluate.evaluate(
        generator_path,
        tmp_path / "out",
        paired_dir=paired_dir,
        detector=corner_box,
        reference_methods=False,
        visual_report=False,
        progress=False,
    )
    rows = _read_csv(summary["files"]["csv"])
    assert {"reference_boxes", "blurred_detection_recall", "deblurred_detection_f1"} <= set(rows[0])
    assert set(summary["detection"]) == {"blurred", "deblurred"}
    blurred = summary["detection"]["blurred"]
    assert blurred["true_positives"] + blurred["false_negatives"] == sum(
        int(r["reference_boxes"]) for r in rows
    )
    assert "unsharp" not in summary["methods"]


def test_a_mismatched_pair_is_skipped_in_one_line_and_the_rest_evaluated(
    generator_path, paired_dir, tmp_path, capsys, caplog
):
    write_image(paired_dir / "blur" / "img_b.png", np.zeros((48, 52, 3), np.uint8))
    out = tmp_path / "out"
    code = _run_cli(
        [f"--weights={generator_path}", f"--paired_dir={paired_dir}", f"--output_dir={out}"]
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1
    assert errors == ["error: skipped 1 unusable files (named above)"]
    assert [row["name"] for row in _read_csv(out / "per_image.csv")] == ["img_a"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_images"] == 1 and len(summary["skipped"]) == 1
    problem = summary["skipped"][0]
    assert "img_b.png" in problem and "52x48" in problem and "56x48" in problem
    assert any(problem in record.getMessage() for record in caplog.records)


def test_unreadable_files_give_one_line_errors(generator_path, paired_dir, tmp_path, capsys):
    (paired_dir / "sharp" / "img_a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (paired_dir / "blur" / "img_b.png").write_bytes(b"")
    code = _run_cli(
        [
            f"--weights={generator_path}",
            f"--paired_dir={paired_dir}",
            f"--output_dir={tmp_path / 'out'}",
        ]
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 2  # nothing usable at all
    assert len(errors) == 2
    assert any("img_a.png" in line for line in errors)
    assert any("img_b.png" in line and "empty" in line for line in errors)
    with pytest.raises(evaluate.EvaluationInputError, match="img_a.png|img_b.png") as info:
        evaluate.evaluate(generator_path, tmp_path / "lib", paired_dir=paired_dir, progress=False)
    assert "\n" not in str(info.value) and len(info.value.problems) == 2


def test_missing_weights_and_sources_are_reported(generator_path, paired_dir, tmp_path, capsys):
    code = _run_cli(
        [
            f"--weights={tmp_path / 'nope.keras'}",
            f"--paired_dir={paired_dir}",
            f"--output_dir={tmp_path / 'out'}",
        ]
    )
    assert code == 2 and "nope.keras" in capsys.readouterr().err
    with pytest.raises(ValueError, match="exactly one"):
        evaluate.evaluate(generator_path, tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError):
        evaluate.evaluate(generator_path, tmp_path / "out", sharp=str(tmp_path / "empty"))


def test_cli_detection_without_opencv_detectors_says_why(
    generator_path, paired_dir, tmp_path, capsys, monkeypatch
):
    # OpenCV 5 moved HOG and the Haar cascades to contrib; simulate such a build.
    monkeypatch.delattr(cv2, "HOGDescriptor")
    code = _run_cli(
        [
            f"--weights={generator_path}",
            f"--paired_dir={paired_dir}",
            f"--output_dir={tmp_path / 'out'}",
            "--detection",
        ]
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(errors) == 1 and cv2.__version__ in errors[0]


def test_comparison_grid_layout_and_errors():
    a = np.zeros((40, 30, 3), np.uint8)
    b = np.full((40, 30), 200, np.uint8)
    grid = report.comparison_grid([("blurred  PSNR 20.00 dB", a), ("sharp", b)], gap=2)
    assert grid.dtype == np.uint8 and grid.shape[1] == 62
    caption_height = grid.shape[0] - 40
    assert caption_height > 0
    np.testing.assert_array_equal(grid[caption_height:, 32:], np.full((40, 30, 3), 200))
    assert grid[:caption_height, :30].max() > 150  # light caption text on the dark bar
    with pytest.raises(ValueError, match="same size"):
        report.comparison_grid([("a", a), ("b", np.zeros((41, 30, 3), np.uint8))])


def test_html_report_escapes_names_and_links_grids(tmp_path):
    page = report.write_html_report(
        tmp_path / "site" / "index.html",
        [
            {
                "name": "<b>x</b>",
                "blurred_psnr": 21.5,
                "grid": str(tmp_path / "site" / "g" / "x.png"),
            }
        ],
        columns=["blurred_psnr"],
        summary={"blurred input psnr": float("nan")},
    )
    text = open(page, encoding="utf-8").read()
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
    assert 'src="g/x.png"' in text and "21.50" in text


def test_cli_defaults_to_the_pretrained_model_and_mixes_sources(sharp_paths, tmp_path, capsys):
    out = tmp_path / "out"
    code = _run_cli(
        [
            f"--sharp_dir={os.path.dirname(sharp_paths[0])},embedded",
            f"--output_dir={out}",
            "--exposure=uniform",
            "--fraction=1",
            "--noreport",
            "--noreferences",
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_images"] == len(sharp_paths) + 2  # + the embedded validation photos
    assert summary["weights"] == "mobile"
    assert summary["blur_options"] == {"exposure": [None], "fraction": [1.0]}


def test_cli_refuses_a_blur_level_that_is_not_a_number(generator_path, sharp_paths, tmp_path):
    from absl import app

    with pytest.raises(app.UsageError, match="--fraction takes numbers"):
        _run_cli(
            [
                f"--weights={generator_path}",
                f"--sharp_dir={sharp_paths[0]}",
                f"--output_dir={tmp_path}",
                "--fraction=uniform",
            ]
        )
