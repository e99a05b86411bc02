"""The command line, run as a user would: `python -m compiler ...` in a subprocess."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mlp.ir"
INVALID = ROOT / "tests" / "ir" / "invalid"


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler", *args], capture_output=True,
                          text=True, cwd=ROOT, input=stdin, timeout=120)


def test_help_lists_the_verbs():
    r = cli("--help")
    assert r.returncode == 0
    for verb in ("opt", "run", "ops", "bench"):
        assert verb in r.stdout


def test_opt_prints_the_module_unchanged(tmp_path):
    r = cli("opt", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    assert r.stdout == EXAMPLE.read_text()
    out = tmp_path / "copy.ir"
    r = cli("opt", str(EXAMPLE), "-o", str(out))
    assert r.returncode == 0 and out.read_text() == EXAMPLE.read_text()
    assert (tmp_path / "copy.safetensors").exists()


def test_opt_reads_stdin_and_runs_a_pipeline():
    text = ("module @m {\n  func @main(%x: f32[2]) -> (f32[2]) {\n    %0 = exp(%x) : f32[2]\n"
            "    %1 = neg(%x) : f32[2]\n    return %1\n  }\n}\n")
    r = cli("opt", "-", "-p", "prune-dead", stdin=text)
    assert r.returncode == 0, r.stderr
    assert "exp" not in r.stdout and "%0 = neg(%x) : f32[2]" in r.stdout


def test_parse_error_shows_file_line_col_and_caret_without_traceback():
    path = INVALID / "syntax.ir"
    r = cli("opt", str(path))
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{path}:5:17: error: unexpected ':' in the operand list")
    assert lines[1] == "    %0 = exp(%x : f32[4]" and lines[2] == " " * 16 + "^"
    assert "Traceback" not in r.stderr


def test_verify_error_without_traceback():
    r = cli("opt", str(INVALID / "result_type_mismatch.ir"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{INVALID / 'result_type_mismatch.ir'}:5: error: 'add' result 0" in r.stderr


def test_user_errors_exit_1_with_one_message(tmp_path):
    binary = tmp_path / "x.ir"
    binary.write_bytes(b"\xff\xfe\x00")
    for args, message in [
        (("opt", "missing.ir"), "missing.ir: no such file"),
        (("opt", str(binary)), "not a text file"),
        (("opt", str(EXAMPLE), "-p", "no-such-pass"), "unknown pass 'no-such-pass'"),
        (("opt", str(EXAMPLE), "-p", "prune-dead{level=3}"), "bad option 'level=3'"),
        (("run", str(EXAMPLE), "--dim", "batch=x"), "--dim batch: 'x' is not an integer"),
        (("run", str(EXAMPLE), "--input", "nope=a.npy"), "--input names no argument"),
        (("run", str(EXAMPLE), "--dim", "batch=1000"), "?batch = 1000 is outside its bounds"),
        (("ops", "frobnicate"), "unknown op 'frobnicate'"),
        (("bench", "nothing"), "unknown benchmark 'nothing'; available: ir-text, import, passes"),
    ]:
        r = cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_run_example_with_given_input(tmp_path):
    x = np.random.default_rng(3).standard_normal((3, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    r = cli("run", str(EXAMPLE), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("output 0: float32[3, 10] [")
    probs = np.load(out)["arr_0"]
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


def test_ops_lists_the_registry():
    r = cli("ops")
    assert r.returncode == 0
    assert "matmul(a, b)  [contraction, pure]" in r.stdout
    assert "gelu(x) {approximate: str = 'none'}" in r.stdout
    r = cli("ops", "cast")
    assert "cast(x) {to: dtype, saturate: bool = True" in r.stdout and "convert to dtype" in r.stdout


def test_list_passes():
    r = cli("opt", "--list-passes")
    assert r.returncode == 0
    listed = [ln.split("{")[0] for ln in r.stdout.splitlines() if not ln.startswith(" ")]
    assert listed == sorted(listed) and "prune-dead" in listed and "fuse-ops" in listed
    assert "fuse-ops{max-ops: int = 16}" in r.stdout


def test_bench_ir_text_runs():
    r = cli("bench", "ir-text", "--ops", "300", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    assert "ir-text: 300 ops" in r.stdout and "parse" in r.stdout


def test_compile_saves_and_run_checks_the_llvm_target(tmp_path):
    example = str(EXAMPLE)
    out = tmp_path / "mlp.dlc"
    r = cli("compile", example, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "compiled" in r.stdout and (out / "module.o").exists()
    import compiler
    x = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    from compiler import ir
    np.testing.assert_allclose(compiler.load(str(out))(x)[0], ir.interpret(ir.load(example), x)[0],
                               rtol=1e-5, atol=1e-6)
    r = cli("run", example, "--dim", "batch=3", "--target", "llvm", "--check")
    assert r.returncode == 0, r.stderr
    diff = float(r.stdout.split("max |llvm - interpreter| = ")[1].split()[0])
    assert diff < 1e-5
