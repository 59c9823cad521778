"""The command line: `python -m asdex demo` and `python -m asdex inspect`, and the README's
set-up commands that CI runs.

Both commands run in-process at tiny sizes (`demo` switches JAX to float64 and back);
one subprocess checks the real entry point: `python -m asdex`, importing the user's
module from the current directory, and its short error message.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import asdex
from asdex.__main__ import main
from asdex._cli._colorings import color_all, is_symmetric, max_per_row_and_col
from asdex._cli._errors import CLIError
from asdex._cli._loading import load_function
from asdex._cli._shapes import format_spec, parse_spec
from asdex._cli._timing import format_seconds, format_speedup
from asdex.coloring import check_coloring_cols, check_coloring_rows

ROOT = pathlib.Path(__file__).resolve().parent.parent

USER_MODULE = '''
import jax, jax.numpy as jnp
from jax.extend.core import Primitive

def residual(x):
    return x[1:] ** 2 - 2.0 * x[:-1]

def energy(x):
    return jnp.sum((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2)

def mixed(x, y):
    return x * y[::-1] + jnp.sin(x)

def boom(x):
    raise ValueError("the model is not configured")

def pair(x):
    return x, x

def text(x):
    return "hello"

def mismatch(x):
    return x + jnp.ones(3)

_custom = Primitive("my_custom_op")
_custom.def_impl(lambda x: 2 * x)
_custom.def_abstract_eval(lambda x: x)

def custom(x):
    return _custom.bind(x)

value = 3
'''


@pytest.fixture
def user_file(tmp_path, request):
    # a module name of its own per test, so no test sees another's cached module
    name = re.sub(r"\W", "_", request.node.name)
    path = tmp_path / f"user_{name}.py"
    path.write_text(USER_MODULE)
    return path


def _inspect(capsys, target, *options):
    status = main(["inspect", target, *options])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- argument specs -------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "shape", "dtype"), [
    ("float32[1000]", (1000,), "float32"),
    ("float64[10, 20]", (10, 20), "float64"),
    ("float32[]", (), "float32"),
    ("int32", (), "int32"),
    (" bool [2,3] ", (2, 3), "bool"),
])
def test_parse_spec(spec, shape, dtype):
    parsed = parse_spec(spec)
    assert parsed.shape == shape
    assert np.dtype(parsed.dtype).name == dtype
    assert parse_spec(format_spec(parsed)) == parsed


@pytest.mark.parametrize(("spec", "message"), [
    ("float32[10", "cannot parse the argument spec 'float32[10'"),
    ("[10]", "cannot parse the argument spec '[10]'"),
    ("floot[3]", "unknown dtype 'floot'"),
    ("str[3]", "unknown dtype 'str'"),
    ("float32[a]", "cannot parse the dimensions"),
    ("float32[-1]", "cannot parse the dimensions"),
])
def test_parse_spec_errors_name_the_spec_and_the_format(spec, message):
    with pytest.raises(CLIError, match=re.escape(message)) as error:
        parse_spec(spec)
    assert "e.g. float32[1000]" in str(error.value)


def test_format_seconds_and_speedup():
    assert [format_seconds(s) for s in (2.5, 0.0456, 0.000123)] == ["2.50 s", "45.6 ms",
                                                                    "123 µs"]
    assert [format_speedup(r) for r in (14712.3, 3.456, 0.5)] == ["14,712x", "3.46x", "0.50x"]


# --- loading the function -------------------------------------------------------------


def test_load_function_from_a_file_and_a_module(user_file):
    name, fn = load_function(f"{user_file}:residual")
    assert name == "residual"
    assert fn(jnp.ones(3)).tolist() == [-1.0, -1.0]
    assert load_function("numpy.linalg:norm")[1] is np.linalg.norm


@pytest.mark.parametrize(("target", "message"), [
    ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz': ModuleNotFoundError"),
    ("numpy", "expected MODULE:FUNCTION"),
    ("numpy.linalg:no_such_function", "module 'numpy.linalg' has no function "
     "'no_such_function'. It defines:"),
    ("/no/such/file.py:f", "there is no file '/no/such/file.py'"),
])
def test_load_function_errors(target, message):
    with pytest.raises(CLIError, match=re.escape(message)):
        load_function(target)


def test_load_function_reports_a_module_that_raises_on_import(tmp_path):
    broken = tmp_path / "broken_module_for_cli.py"
    broken.write_text("import jax\nraise RuntimeError('missing configuration file')\n")
    with pytest.raises(CLIError, match="RuntimeError: missing configuration file"):
        load_function(f"{broken}:f")
    with pytest.raises(RuntimeError, match="missing configuration file"):
        load_function(f"{broken}:f", debug=True)


# --- colorings ------------------------------------------------------------------------


def test_color_all_on_a_jacobian():
    dense = (np.eye(30, 31) + np.eye(30, 31, k=1) + np.eye(30, 31, k=5)) != 0
    pattern = asdex.SparsityPattern.from_dense(dense)
    results = {r.algorithm: r for r in color_all(pattern, hessian=False)}
    assert list(results) == ["column", "row", "star", "acyclic", "bidirectional"]
    assert results["column"].lower_bound == dense.sum(1).max() == 3
    assert results["row"].lower_bound == dense.sum(0).max() == 3
    check_coloring_cols(pattern, results["column"].coloring.colors)  # raises if invalid
    check_coloring_rows(pattern, results["row"].coloring.colors)
    for name in ("column", "row"):
        assert results[name].num_colors >= results[name].lower_bound
    assert results["star"].num_colors is None
    assert "not symmetric" in results["acyclic"].passes
    assert results["bidirectional"].num_colors >= 1


def test_color_all_on_a_hessian_pattern():
    tridiagonal = np.eye(40) + np.eye(40, k=1) + np.eye(40, k=-1)
    pattern = asdex.SparsityPattern.from_dense(tridiagonal)
    assert is_symmetric(pattern) and max_per_row_and_col(pattern) == (3, 3)
    results = {r.algorithm: r for r in color_all(pattern, hessian=True)}
    assert results["column"].passes == "3 HVPs"
    assert results["star"].num_colors == 3
    assert results["acyclic"].num_colors == 2  # substitution: half of star on a band


# --- inspect: the report --------------------------------------------------------------


def _number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return match.group(1)


def test_inspect_jacobian_report(capsys, user_file, tmp_path):
    plot = tmp_path / "pattern.png"
    status, out, err = _inspect(capsys, f"{user_file}:residual", "--args", "float32[30]",
                                "--plot", str(plot))
    assert status == 0, err
    dense = np.asarray(jax.jacfwd(lambda x: x[1:] ** 2 - 2.0 * x[:-1])(jnp.full(30, 0.7)))
    assert f"pattern: 29 x 30, {np.count_nonzero(dense)} nonzeros" in out
    assert f"at most {np.count_nonzero(dense, 1).max()} per row" in out
    assert re.search(r"column\s+2\s+2\s+2 JVPs", out)
    assert re.search(r"star\s+—\s+n/a: the pattern is not symmetric", out)
    assert "ColoredPattern(shape=(29, 30), nnz=58, num_colors=2, mode='fwd'" in out
    assert "│10⋅" in out  # the colored grid
    assert float(_number(r"largest difference from jax.jacfwd: (\S+)", out)) < 1e-5
    assert re.search(r"asdex \(2 JVPs\)\s+\S+ \S+\s+\(median of \d+ calls; compile", out)
    assert re.search(r"jax.jacfwd \(30 JVPs\)", out)
    assert _number(r"speed-up over dense: (\S+)x", out)
    assert plot.stat().st_size > 0 and f"Saved the colored pattern to {plot}" in out


def test_inspect_without_matplotlib_says_so_and_saves_nothing(capsys, user_file, tmp_path,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    plot = tmp_path / "pattern.png"
    status, out, err = _inspect(capsys, f"{user_file}:residual", "--args", "float32[10]",
                                "--plot", str(plot))
    assert status == 0, err
    assert "matplotlib is not installed, so no picture is saved" in out
    assert not plot.exists()


def test_inspect_hessian_report(capsys, user_file):
    status, out, err = _inspect(capsys, f"{user_file}:energy", "--args", "float32[50]",
                                "--hessian")
    assert status == 0, err
    assert "Hessian of energy(float32[50]) -> float32[]" in out
    assert "pattern: 50 x 50, 148 nonzeros" in out
    assert re.search(r"star\s+3\s+3 HVPs", out)
    assert re.search(r"acyclic\s+2\s+2 HVPs", out)
    assert float(_number(r"largest difference from jax.hessian: (\S+)", out)) < 1e-2


def test_inspect_several_arguments(capsys, user_file):
    status, out, err = _inspect(capsys, f"{user_file}:mixed", "--args", "float32[8]",
                                "--args", "float32[8]", "--argnums", "0,1")
    assert status == 0, err
    assert "with respect to arguments 0, 1" in out
    assert "pattern: 8 x 16, 16 nonzeros" in out
    assert float(_number(r"largest difference from jax.jacfwd: (\S+)", out)) < 1e-6


# --- inspect: bad input ---------------------------------------------------------------


@pytest.mark.parametrize(("function", "options", "message"), [
    ("boom", (), "boom raised: ValueError: the model is not configured (run with --debug"),
    ("mismatch", ("--args", "float32[4]"), "mismatch raised: TypeError: add got "
     "incompatible shapes"),
    ("pair", (), "pair returned a tuple of 2 items, but inspect needs a function that "
     "returns one array"),
    ("text", (), "text returned a str"),
    ("custom", (), "custom uses an operation asdex cannot analyse: asdex has no sparsity "
     "detection rule for the primitive 'my_custom_op'"),
    ("value", (), "is not a function: it is 3"),
    ("nope", (), "has no function 'nope'. It defines: boom, custom, energy"),
    ("residual", ("--args", "float32[3", ), "cannot parse the argument spec 'float32[3'"),
    ("residual", ("--args", "int32[3]"), "argument 0 is int32[3]: --argnums must select "
     "floating-point arguments"),
    ("residual", ("--argnums", "1"), "--argnums 1 is out of range"),
    ("residual", ("--argnums", "x"), "--argnums must be an integer"),
    ("residual", ("--hessian",), "--hessian needs a scalar-valued function, but residual "
     "returns float32[2]"),
])
def test_inspect_errors_are_one_short_message(capsys, user_file, function, options,
                                              message):
    args = options if "--args" in options else ("--args", "float32[3]", *options)
    status, _, err = _inspect(capsys, f"{user_file}:{function}", *args)
    assert status == 1
    assert err.startswith("asdex: error: ") and message in err, err
    assert "Traceback" not in err and len(err.splitlines()) <= 3


def test_inspect_debug_shows_the_original_exception(capsys, user_file):
    with pytest.raises(ValueError, match="the model is not configured"):
        main(["inspect", f"{user_file}:boom", "--args", "float32[3]", "--debug"])
    with pytest.raises(NotImplementedError, match="my_custom_op"):
        main(["inspect", f"{user_file}:custom", "--args", "float32[3]", "--debug"])


# --- the entry point and the demo ---------------------------------------------------


def test_inspect_entry_point_imports_from_the_current_directory(tmp_path):
    (tmp_path / "mymodel.py").write_text(USER_MODULE)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.run([sys.executable, "-m", "asdex", "inspect", "mymodel:boom", "--args",
                          "float32[20]"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 1
    assert run.stderr.strip() == ("asdex: error: boom raised: ValueError: the model is not "
                                  "configured (run with --debug for the full traceback)")
    assert "Jacobian of boom(float32[20])" not in run.stdout


def _bratu_dense_newton(size: int, lam: float = 6.0) -> np.ndarray:
    """The demo's answer computed independently: NumPy, dense Jacobian, float64."""
    h = 1.0 / (size + 1)
    eye = np.eye(size)
    second = -2 * eye + np.eye(size, k=1) + np.eye(size, k=-1)
    laplacian = np.kron(eye, second) + np.kron(second, eye)
    u = np.zeros(size * size)
    for _ in range(20):
        residual = laplacian @ u + h**2 * lam * np.exp(u)
        u -= np.linalg.solve(laplacian + np.diag(h**2 * lam * np.exp(u)), residual)
    return u


def test_demo_solves_the_bratu_problem_step_by_step(capsys, tmp_path):
    picture = tmp_path / "pictures" / "demo.png"
    assert main(["demo", "--size", "8", "--out", str(picture)]) == 0
    out = capsys.readouterr().out
    assert not jax.config.jax_enable_x64  # the demo's float64 does not leak out
    assert "on a 8 x 8 grid (64 unknowns" in out
    assert "ColoredPattern(shape=(64, 64), nnz=288" in out
    assert float(_number(r"largest difference between the two matrices: (\S+)", out)) < 1e-12
    assert re.search(r"asdex \(\d JVPs\)\s+\S+ \S+\s+\(median of", out)
    steps = re.findall(r"^\s+(\d+)\s+(\d\.\d+e[-+]\d+)", out, re.MULTILINE)
    assert [int(k) for k, _ in steps] == list(range(len(steps))) and len(steps) >= 4
    norms = [float(r) for _, r in steps]
    assert norms[-1] < 1e-12 < norms[0]
    peak = float(_number(r"u peaks at (\S+)", out))
    assert peak == pytest.approx(_bratu_dense_newton(8).max(), abs=1e-6)
    assert f"to {picture}" in out and picture.stat().st_size > 0


def test_demo_rejects_a_bad_size(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--size", "1"])
    assert exit_.value.code == 2
    assert "--size: expected an integer of at least 2, got '1'" in capsys.readouterr().err


# --- README and CI --------------------------------------------------------------------


def _readme_setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up\n.*?```bash\n(.*?)```", readme, re.DOTALL)
    assert block, "README.md has no set-up block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines()
            if line.strip()]


def test_readme_sets_up_in_two_commands_that_ci_runs():
    commands = _readme_setup_commands()
    assert commands == ['pip install -e ".[dev]" && python -m asdex demo', "python -m pytest"]
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert re.search(rf"^{re.escape(command)}( |$)", ci, re.MULTILINE), (
            f".ci/run does not run the README's command {command!r}")


def test_benchmark_runner_prints_a_progress_line_per_benchmark(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("benchmark_runner",
                                                  ROOT / "benchmarks" / "__main__.py")
    runner = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, runner)  # dataclasses look their module up
    spec.loader.exec_module(runner)
    script = tmp_path / "fake_benchmark.py"
    script.write_text("import time\ntime.sleep(0.2)\nprint('| a | b |')\n")
    fakes = [runner.Benchmark(name, str(script), (), (), "stdout") for name in ("one", "two")]
    runner.run_all(fakes, False, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"== \[1/2\] one \(.*fake_benchmark.py\) starts at 0:00 elapsed",
                        lines[0])
    assert re.fullmatch(rf"== \[1/2\] one done in \d+ s \(0:\d\d elapsed\): wrote "
                        rf"{re.escape(str(tmp_path / 'one.md'))}", lines[1])
    assert lines[2].startswith("== [2/2] two (") and lines[3].startswith("== [2/2] two done")
    assert re.fullmatch(r"== all 2 done in 0:\d\d", lines[4])
    assert (tmp_path / "two.md").read_text().startswith("| a | b |")


def test_help_lists_both_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s+demo\s+solve a 2-D", out, re.MULTILINE)
    assert re.search(r"^\s+inspect\s+report the sparsity", out, re.MULTILINE)
