"""The index check run before LiteRT sees a `.tflite` file: the files the export writes
pass, a file whose indices point nowhere (two of which segfault LiteRT) is named, and no
bytes make the check itself raise."""

import os

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from keras_deblur.models.tflite_structure import structure_problem

SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "seeds", "load_tflite")


def _seed(name="dynamic_fp32.tflite"):
    with open(os.path.join(SEEDS, name), "rb") as file:
        return file.read()


def _with(change):
    """The dynamic-shape seed, unpacked, changed by `change(model)` and packed again."""
    model = schema.ModelT.InitFromPackedBuf(_seed(), 0)
    for subgraph in model.subgraphs:  # writable lists instead of read-only numpy views
        subgraph.inputs, subgraph.outputs = list(subgraph.inputs), list(subgraph.outputs)
        for operator in subgraph.operators:
            operator.inputs, operator.outputs = list(operator.inputs), list(operator.outputs)
    change(model)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _set(path, value):
    """A change setting the attribute at `path` (names and list indices) of the model."""

    def change(model):
        target = model
        for step in path[:-1]:
            target = target[step] if isinstance(step, int) else getattr(target, step)
        if isinstance(path[-1], int):
            target[path[-1]] = value
        else:
            setattr(target, path[-1], value)

    return change


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(SEEDS) if n != "not_a_model.tflite"))
def test_the_models_the_export_writes_pass(name):
    assert structure_problem(_seed(name)) is None


def test_the_unchanged_seed_repacked_passes():  # so the cases below differ in one index only
    assert structure_problem(_with(lambda model: None)) is None


@pytest.mark.parametrize(
    "path, value, problem",
    [
        # Both segfaulted LiteRT (ai_edge_litert 2.3.0): Interpreter(), get_input_details().
        (("subgraphs",), None, "no subgraphs"),
        (("signatureDefs", 0, "subgraphIndex"), 5, "signature 0: subgraph 5, out of range (1 "),
        # A TypeError from LiteRT's Python wrapper.
        (("signatureDefs", 0, "inputs", 0, "tensorIndex"), 2**31, "tensor 2147483648, out of"),
        (("subgraphs",), [], "no subgraphs"),
        (("subgraphs", 0, "tensors", 3, "buffer"), 999, "tensor 3 names buffer 999, out of"),
        (("subgraphs", 0, "operators", 0, "opcodeIndex"), 10, "operator code 10, out of range"),
        (("subgraphs", 0, "operators", 0, "inputs", 0), 37, "operator 0 input tensor 37, out"),
        (("subgraphs", 0, "operators", 0, "outputs", 0), -2, "operator 0 output tensor -2,"),
        (("subgraphs", 0, "inputs", 0), 999, "subgraph 0: input tensor 999, out of range (37 "),
        (("subgraphs", 0, "outputs", 0), -5, "subgraph 0: output tensor -5, out of range"),
    ],
)
def test_indices_that_point_nowhere_are_named(path, value, problem):
    assert problem in structure_problem(_with(_set(path, value)))


def test_an_optional_operator_input_is_not_a_problem():
    assert structure_problem(_with(_set(("subgraphs", 0, "operators", 0, "inputs", 0), -1))) is None


def test_no_bytes_make_the_check_raise():
    seed = np.frombuffer(_seed(), np.uint8)
    rng = np.random.default_rng(0)
    problems = set()
    for length in range(0, seed.size, 97):
        problems.add(structure_problem(seed[:length].tobytes()))
    for _ in range(1000):  # a few bytes overwritten, often offsets and vtables
        mutant = seed.copy()
        positions = rng.integers(0, seed.size, rng.integers(1, 8))
        mutant[positions] = rng.integers(0, 256, positions.size)
        problems.add(structure_problem(mutant.tobytes()))
    assert "an offset points outside the file" in problems
    assert all(problem is None or isinstance(problem, str) for problem in problems)
