"""What every fuzz harness shares: the contract, its check, seeding and the libFuzzer entry.

The contract of a reader of untrusted files: for any bytes it either succeeds
(and what it returns honours its docstring), or raises one of the exception
types its docstring documents, with a one-line message that names the file.
Never another type, never a hang, never unbounded memory. `_documented_errors`
is the one list of those types, per harness; libFuzzer's `-timeout` and
`-rss_limit_mb` (defaults below) turn a hang or a memory blow-up into a crash.

Each `fuzz_*.py` beside this file is a script:

    python tests/fuzz/fuzz_read_image.py -max_total_time=600 corpus/read_image

An empty or missing corpus folder is first filled with the harness's seeds.
`tests/test_fuzz_harnesses.py` runs each one briefly with a fixed seed and
replays `regressions/<harness>/`, where every input that ever crashed is kept.
"""

import copy
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for _path in (REPO, os.path.dirname(HERE)):  # keras_deblur, export; tests/fuzz_corpus.py
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REGRESSIONS = os.path.join(HERE, "regressions")
# Per-input time (s) and memory (MB) limits unless the command line sets them.
# TensorFlow alone takes ~0.8 GB resident; an image within the harness's pixel
# budget takes under 100 MB more.
DEFAULT_TIMEOUT_S = 10
DEFAULT_RSS_LIMIT_MB = 2560


def _documented_errors():
    """`{harness: exception types}`, each from the docstring of the function it fuzzes."""
    from keras_deblur.data.images import ImageReadError

    return {
        # images.read_image_and_header: "Raises: ImageReadError" (a ValueError).
        "read_image": (ImageReadError,),
        # models.loading.load_generator: "FileNotFoundError ... ValueError".
        "load_keras": (FileNotFoundError, ValueError),
        # export.runtime.TFLiteGenerator: "FileNotFoundError ... ValueError".
        "load_tflite": (FileNotFoundError, ValueError),
        # recipe.Recipe.from_json, train.load_recipe: "FileNotFoundError ... ValueError".
        "recipe": (FileNotFoundError, ValueError),
        # validation.manifest.load_manifest: "FileNotFoundError, ValueError".
        "manifest": (FileNotFoundError, ValueError),
    }


def documented_errors(harness):
    """The exception types `harness`'s target may raise for bad input."""
    return _documented_errors()[harness]


def check_error(error, harness, names):
    """Raises AssertionError unless `error` honours the contract of `harness`.

    Args:
        error: the exception the target raised (already known to be documented).
        harness: str. A key of `_documented_errors`.
        names: tuple of str. The message must contain one of them (the file).
    """
    message = str(error)
    assert isinstance(error, documented_errors(harness)), f"undocumented {type(error).__name__}"
    assert message and "\n" not in message, f"not one line: {message!r}"
    assert any(name in message for name in names), f"names none of {names}: {message!r}"


def scratch_dir():
    """A folder for the input files, in memory (/dev/shm) where there is one."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = tempfile.mkdtemp(prefix="keras_deblur_fuzz_", dir=parent)
    import atexit

    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def write(path, data):
    with open(path, "wb") as file:
        file.write(data)


def regression_inputs(harness):
    """`[(name, bytes)]` of the kept crashing inputs of `harness`, sorted by name."""
    folder = os.path.join(REGRESSIONS, harness)
    if not os.path.isdir(folder):
        return []
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    return [(n, open(os.path.join(folder, n), "rb").read()) for n in names]


def _with_defaults(argv):
    """libFuzzer's arguments with our per-input time and memory limits unless given."""
    argv = list(argv)
    given = {arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("-")}
    if "-timeout" not in given:
        argv.append(f"-timeout={DEFAULT_TIMEOUT_S}")
    if "-rss_limit_mb" not in given:
        argv.append(f"-rss_limit_mb={DEFAULT_RSS_LIMIT_MB}")
    return argv


def _seed_corpus_dirs(argv, write_seeds):
    """Fills each empty or missing corpus folder on the command line with the seeds."""
    for arg in argv[1:]:
        if arg.startswith("-"):
            continue
        if os.path.isdir(arg) and os.listdir(arg):
            continue
        if os.path.exists(arg):  # a file: libFuzzer runs it once
            continue
        os.makedirs(arg, exist_ok=True)
        for name, data in write_seeds().items():
            write(os.path.join(arg, name), data)


def _keeping_crashes(one_input, prefix):
    """`one_input` that writes an input it raises on to `<prefix>crash-<sha1>` first.

    libFuzzer writes the input itself on a signal, but not always when atheris
    ends the process on a Python exception.
    """
    import hashlib

    def run(data):
        try:
            one_input(data)
        except BaseException:
            path = f"{prefix}crash-{hashlib.sha1(data).hexdigest()}"
            write(path, data)
            print(f"Crashing input written to {path}", file=sys.stderr)
            raise

    return run


def main(one_input, seeds, custom_mutator=None):
    """The script entry point: seed the corpus folders, then hand over to libFuzzer.

    Args:
        one_input: callable(bytes). The harness; raising means a crash.
        seeds: callable() -> {file name: bytes}. The seed inputs.
        custom_mutator: callable(data, max_size, seed) -> bytes, or None.
    """
    import atheris

    argv = _with_defaults(sys.argv)
    _seed_corpus_dirs(argv, seeds)
    prefixes = [arg.split("=", 1)[1] for arg in argv if arg.startswith("-artifact_prefix=")]
    one_input = _keeping_crashes(one_input, prefixes[-1] if prefixes else "./")
    if custom_mutator is None:
        atheris.Setup(argv, one_input)
    else:
        atheris.Setup(argv, one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


# Values a JSON mutator swaps in: boundaries, wrong types, non-finite floats
# (Python's json reads NaN and Infinity), deep nesting.
_JSON_VALUES = (
    None, True, False, 0, -1, 1, 2, 3, 2**31, 2**63, -(2**63), 10**30, 0.0, -0.0, 0.5, 1e-300,
    1e308, float("nan"), float("inf"), float("-inf"), "", "none", "None", "\n", "x" * 300,
    [], [None], [0.5, None], {}, {"": None}, [[[[[[[[[[[]]]]]]]]]]],
)  # fmt: skip


def _json_nodes(value, path=()):
    """Every `(path, value)` in a JSON tree, the root included."""
    yield path, value
    if isinstance(value, (dict, list)):
        for key, child in value.items() if isinstance(value, dict) else enumerate(value):
            yield from _json_nodes(child, (*path, key))


def _json_mutant(document, rng, atheris):
    """`document` with one node replaced, removed, duplicated or byte-mutated."""
    nodes = list(_json_nodes(document))
    path, value = rng.choice(nodes)
    choice = rng.random()
    if choice < 0.5:
        pool = _JSON_VALUES + tuple(v for _, v in rng.sample(nodes, min(3, len(nodes))))
        new = copy.deepcopy(rng.choice(pool))  # a copy: no shared or circular nodes
    elif choice < 0.7 and isinstance(value, str):
        new = atheris.Mutate(value.encode(), 2 * len(value) + 8).decode("utf-8", "replace")
    elif choice < 0.8 and isinstance(value, (int, float)) and not isinstance(value, bool):
        new = rng.choice((-value, value + 1, value - 1, value * 1000, value / 3))
    else:
        new = None
    if not path:
        return new
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if choice >= 0.8:  # remove the node, or repeat it in its list
        if isinstance(parent, list) and rng.random() < 0.5:
            parent.insert(path[-1], value)
        else:
            del parent[path[-1]]
        return document
    parent[path[-1]] = new
    return document


def json_mutator(data, max_size, seed):
    """A libFuzzer custom mutator for JSON files: a structural change (7 in 10), else bytes.

    A byte mutation rarely keeps JSON valid; changing one value for a boundary,
    a wrong type or NaN reaches the checks behind the parser.
    """
    import json
    import random

    import atheris

    rng = random.Random(seed)
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        document = None
    if document is None or rng.random() < 0.3:
        return atheris.Mutate(data, max_size)
    mutated = json.dumps(_json_mutant(document, rng, atheris)).encode()
    return mutated if len(mutated) <= max_size else atheris.Mutate(data, max_size)
