"""The notebook runner refuses unknown notebooks and parameters with a clear message, and
runs a notebook outside ``notebooks/`` given by path."""

import json

import nbformat
import pytest

from mdic_lab.experiments.notebooks import ROOT, course_notebooks, declared_parameters, main, run_notebook


def test_course_notebooks_in_teaching_order():
    names = [p.name[:2] for p in course_notebooks()]
    assert names == sorted(names) and names[0] == "01"
    assert [p.name[:2] for p in course_notebooks(["03", "01"])] == ["01", "03"]
    assert all(p.parent == ROOT / "notebooks" for p in course_notebooks())


def test_unknown_notebook_number_is_refused(capsys):
    assert main(["--only", "99"]) == 2
    err = capsys.readouterr().err
    assert "unknown notebook number(s) ['99']" in err and "expected some of" in err


def test_unknown_parameter_is_refused(tmp_path):
    first = course_notebooks()[0]
    with pytest.raises(ValueError, match="unknown parameter"):
        run_notebook(first, tmp_path, no_such_parameter=1)


def test_cli_refuses_a_parameter_no_notebook_declares(capsys):
    assert main(["--only", "01", "-p", "no_such_parameter", "1"]) == 2
    assert "declared by none of the notebooks" in capsys.readouterr().err


def test_missing_notebook_is_named(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_notebook("notebooks/00_missing.ipynb", tmp_path)
    assert main(["ablations/no_such.ipynb"]) == 2
    assert "no_such.ipynb does not exist" in capsys.readouterr().err


def _tiny_notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('output_dir = "out"\nscale = 2')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def test_notebook_outside_notebooks_dir_runs_by_path(tmp_path, capsys):
    """A notebook anywhere (like ablations/run_all.ipynb) runs with the same runner and
    writes its metrics through the claims helper."""
    nb = tmp_path / "elsewhere" / "run_all.ipynb"
    nb.parent.mkdir()
    _tiny_notebook(nb, "from mdic_lab.experiments.claims import Claims, write_metrics\n"
                       "claims = Claims()\n"
                       "claims.add('2 * scale = 2 scale', f'{2 * scale}', f'{scale + scale}', 2 * scale == scale + scale)\n"
                       "print(claims.table())\n"
                       "write_metrics(output_dir, claims, notebook='run_all', scale=scale)\n")
    assert declared_parameters(nb) == {"output_dir", "scale"}
    m = run_notebook(nb, tmp_path / "run", scale=3)
    assert m["notebook"] == "run_all" and m["scale"] == 3 and m["all_claims_hold"] is True
    assert (tmp_path / "run" / "run_all.ipynb").exists()
    # the command line takes a path too, and reports the claims
    assert main([str(nb), "--out", str(tmp_path / "cli"), "-p", "scale", "5"]) == 0
    assert "run_all.ipynb: 1/1 claims hold" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "run_all" / "metrics.json").read_text())["scale"] == 5


def test_notebook_without_metrics_is_reported(tmp_path):
    nb = tmp_path / "silent.ipynb"
    _tiny_notebook(nb, "x = scale")
    with pytest.raises(FileNotFoundError, match="wrote no"):
        run_notebook(nb, tmp_path / "run")
