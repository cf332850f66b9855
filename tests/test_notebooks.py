"""The Colab notebooks run top to bottom on a fresh install, in fast mode.

Each notebook is executed with nbclient in a kernel of the current interpreter
(the `python3` kernelspec that pip-installed ipykernel puts in the virtual
environment), from the repository root so `keras_deblur` and `export` import
without installing, with `KERAS_DEBLUR_FAST=1` (tiny model, few steps) and
`KERAS_DEBLUR_WORK_DIR` pointing at a temporary folder. The deblur and export
notebooks use the pretrained mobile generator shipped in the package, as a user
would who has not trained one.
"""

import csv
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("train", "deblur_and_evaluate", "export_tflite")
# Generous per-cell limit: a busy 2-core CI machine; fast mode needs seconds per cell.
CELL_TIMEOUT_S = 600


def execute(name, work_dir):
    """Runs notebooks/<name>.ipynb in fast mode; returns the executed notebook."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    with pytest.MonkeyPatch.context() as patch:
        # The kernel inherits this process's environment when it starts.
        patch.setenv("KERAS_DEBLUR_FAST", "1")
        patch.setenv("KERAS_DEBLUR_WORK_DIR", str(work_dir))
        patch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
        patch.delenv("KERAS_DEBLUR_GENERATOR", raising=False)
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(ROOT)}},
        )
        client.execute()
    return notebook


def text_output(notebook):
    """Everything the code cells printed (streams and plain-text results)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output and "text/plain" in output.data:
                parts.append(output.data["text/plain"])
    return "\n".join(parts)


def image_count(notebook):
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The training notebook, executed once; the other notebooks use what it saved."""
    work_dir = tmp_path_factory.mktemp("notebooks")
    return work_dir, execute("train", work_dir)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_small_and_without_outputs(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    assert path.stat().st_size < 100_000
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code_cells)
    install = code_cells[0].source
    assert "REPO_URL" in install and "except ImportError" in install
    # Fast mode must be selectable from the environment near the top.
    assert 'os.environ.get("KERAS_DEBLUR_FAST") == "1"' in code_cells[1].source


def test_train_notebook_trains_and_saves_a_loadable_generator(trained):
    from keras_deblur import build_generator, load_generator

    work_dir, notebook = trained
    generator = load_generator(work_dir / "generator.keras")
    assert (
        generator.count_params() == build_generator(num_filters=8, num_res_blocks=1).count_params()
    )
    (run_dir,) = (work_dir / "runs").iterdir()
    with open(run_dir / "training_log.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 and all(row["val_psnr"] for row in rows)
    assert "best generator:" in text_output(notebook)
    assert image_count(notebook) >= 2  # loss curves and the before/after strip


def test_deblur_and_evaluate_notebook_scores_the_pretrained_generator(tmp_path):
    work_dir = tmp_path
    notebook = execute("deblur_and_evaluate", work_dir)
    output = text_output(notebook)
    assert "mobile: mobile_deblur_generator, 663,280 parameters" in output
    assert re.search(r"DeblurGAN\s+\d+\.\d\d\s+0\.\d{4}", output), output[-2000:]
    summary = json.loads((work_dir / "evaluation" / "summary.json").read_text())
    assert summary["num_images"] == 2
    assert set(summary["methods"]) >= {"blurred", "unsharp", "wiener", "deblurred"}
    assert (work_dir / "evaluation" / "index.html").exists()
    # Two before/after grids, the PSNR histograms and (with a detector) the detection chart.
    assert image_count(notebook) >= 3 + ("detection" in summary)


def test_export_notebook_writes_every_variant_and_runs_it_with_litert(tmp_path):
    work_dir = tmp_path
    notebook = execute("export_tflite", work_dir)
    export_dir = work_dir / "tflite"
    for quantization in ("fp32", "fp16", "dynamic", "int8"):
        assert (export_dir / f"generator_{quantization}_64x64.tflite").stat().st_size > 0
        report = json.loads((export_dir / f"generator_{quantization}_64x64.json").read_text())
        assert report["quantization"] == quantization
    fp32 = json.loads((export_dir / "generator_fp32_64x64.json").read_text())
    assert fp32["passed"]
    assert fp32["identical_to_keras"] or fp32["psnr_vs_keras_db"] >= 45.0
    output = text_output(notebook)
    assert "FAILED: none" in output
    agreement = re.search(r"LiteRT vs Keras: ([\d.]+|inf) dB", output)
    assert agreement and float(agreement.group(1)) > 40.0, output[-2000:]
    assert image_count(notebook) >= 2  # the report chart and the LiteRT before/after
