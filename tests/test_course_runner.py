"""The course runner refuses unknown notebooks and parameters with a clear message."""

import pytest

from mdic_lab.course import course_notebooks, main, run_notebook


def test_unknown_notebook_number_is_refused(capsys):
    assert main(["--only", "99"]) == 2
    err = capsys.readouterr().err
    assert "unknown notebook number(s) ['99']" in err and "expected some of" in err


def test_unknown_parameter_is_refused(tmp_path):
    first = course_notebooks()[0]
    with pytest.raises(ValueError, match="unknown parameter"):
        run_notebook(first, tmp_path, no_such_parameter=1)


def test_missing_notebook_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_notebook("notebooks/00_missing.ipynb", tmp_path)
