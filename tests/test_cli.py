import pytest

from keras_deblur.cli import EXIT_ERROR, reports_errors
from keras_deblur.evaluate import EvaluationInputError


@reports_errors(OSError, ValueError)
def _command(error=None, code=0):
    if error is not None:
        raise error
    return code


def test_a_listed_error_becomes_one_error_line_and_exit_code_2(capsys):
    assert _command(FileNotFoundError("photos/: no image files found")) == EXIT_ERROR == 2
    assert capsys.readouterr().err == "error: photos/: no image files found\n"


def test_an_error_with_problems_prints_one_line_each(capsys):
    assert _command(EvaluationInputError(["a.png: empty file", "b.png: corrupt"])) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: a.png: empty file",
        "error: b.png: corrupt",
    ]


def test_success_and_other_errors_pass_through(capsys):
    assert _command(code=1) == 1
    with pytest.raises(KeyError):
        _command(KeyError("a bug, not bad input"))
    assert capsys.readouterr().err == ""
