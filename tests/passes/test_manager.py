"""The pass manager's instruments: printing, dumps and summary, verify-each, check_numerics."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

import compiler
from compiler import ir
from passes import register
from passes.manager import NumericsCheck, NumericsError, PassManager
from passes.registry import _PASSES

MODULE = """\
module @m {
  const @w : f32[4,4] = dense<[0.5, -1.0, 2.0, 0.25, 1.5, -0.5, 1.0, 0.0, -2.0, 3.0, 0.75, -0.25, 1.0, 1.0, -1.0, 0.5]>
  const @b : f32[4] = dense<[0.1, 0.2, 0.3, 0.4]>
  func @main(%x: f32[?n,4]) -> (f32[?n,4]) {
    %w = constant() {name = @w} : f32[4,4]
    %b = constant() {name = @b} : f32[4]
    %h = matmul(%x, %w) : f32[?n,4]
    %hb = add(%h, %b) : f32[?n,4]
    %dead = exp(%hb) : f32[?n,4]
    %y = gelu(%hb) : f32[?n,4]
    return %y
  }
}
"""


@pytest.fixture
def test_passes():
    """Passes registered from a test: one that breaks the numbers, one that breaks the types."""
    @register("test-scale-bias")
    class ScaleBias:
        factor: float = 1.01

        def run(self, module):  # deliberately wrong: scales one constant
            module.constants["b"] = (module.constants["b"] * self.factor).astype(np.float32)
            return True

    @register("test-break-types")
    class BreakTypes:
        def run(self, module):
            module.main.ops[-1].results[0].type = ir.tensor(["n", 5], "f32")
            return True

    yield
    _PASSES.pop("test-scale-bias", None)
    _PASSES.pop("test-break-types", None)


def test_check_numerics_names_the_wrong_pass(test_passes):
    m = ir.parse(MODULE)
    with pytest.raises(NumericsError) as info:
        compiler.optimize(m, "prune-dead,test-scale-bias,prune-dead", check_numerics=True)
    err = info.value
    assert err.pass_name == "test-scale-bias" and err.output == 0
    msg = str(err)
    assert "pass 'test-scale-bias' changed output 0 (f32[?n,4]): relative error = " in msg
    assert "the last value that still matched is %w, the first that differs is %b" in msg
    # a change within tolerance passes, and the input module is never modified
    out = compiler.optimize(m, "test-scale-bias{factor=1.000001}", check_numerics=True)
    assert out is not m and m.constants["b"][0] == np.float32(0.1)


def test_check_numerics_with_given_inputs_and_tolerance(test_passes):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    check = NumericsCheck(inputs=[x], rtol=0.1)
    compiler.optimize(ir.parse(MODULE), "test-scale-bias", check_numerics=check)  # within 10%
    with pytest.raises(NumericsError):
        compiler.optimize(ir.parse(MODULE), "test-scale-bias{factor=2.0}", check_numerics=check)


def test_verify_after_each_pass_names_the_pass(test_passes):
    with pytest.raises(ir.VerificationError, match="after pass 'test-break-types': 'gelu' result 0"):
        compiler.optimize(ir.parse(MODULE), "test-break-types")


def test_print_ir_after_all_change_and_named():
    for what, expected in (("all", 2), ("change", 1), (["prune-dead"], 2)):
        stream = io.StringIO()
        PassManager.from_string("prune-dead,prune-dead", print_ir_after=what,
                                print_stream=stream).run(ir.parse(MODULE))
        text = stream.getvalue()
        assert text.count("// ----- IR after prune-dead") == expected, what
    assert "// ----- IR after prune-dead (changed) -----\nmodule @m {" in text
    assert "exp" not in text.split("(unchanged)")[1]


def test_dump_dir_files_and_summary(tmp_path):
    pm = PassManager.from_string("prune-dead,prune-dead", dump_dir=str(tmp_path))
    pm.run(ir.parse(MODULE))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["000-input.ir", "001-prune-dead.ir", "002-prune-dead.ir", "summary.json",
                     "summary.txt"]
    assert "exp(" in (tmp_path / "000-input.ir").read_text()
    assert "exp(" not in (tmp_path / "001-prune-dead.ir").read_text()
    ir.verify(ir.parse((tmp_path / "002-prune-dead.ir").read_text()))
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    assert summary[1].split()[:3] == ["1", "prune-dead", summary[1].split()[2]]
    assert "yes" in summary[1] and "6 -> 5" in summary[1] and "exp -1" in summary[1]
    assert "no" in summary[2] and "5 -> 5" in summary[2]
    records = json.loads((tmp_path / "summary.json").read_text())
    assert records[0]["changed"] is True and records[0]["ops_before"]["exp"] == 1


def test_cli_opt_instruments(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "m.ir"
    path.write_text(MODULE)
    r = subprocess.run([sys.executable, "-m", "compiler", "opt", str(path), "-p", "prune-dead",
                        "--print-ir-after", "change", "--dump-dir", str(tmp_path / "d"),
                        "--check-numerics", "--timing"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "exp" not in r.stdout and "// ----- IR after prune-dead (changed)" in r.stderr
    assert "prune-dead" in r.stderr.splitlines()[-1]
    assert (tmp_path / "d" / "001-prune-dead.ir").exists()
    r = subprocess.run([sys.executable, "-m", "compiler", "opt", str(path), "-p", "prune-dead",
                        "-O", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "not both" in r.stderr
