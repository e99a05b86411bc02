"""Command line: `python -m compiler <verb> ...`.

    opt FILE [-p PIPELINE | -O N] [-o OUT] [--print-ir-after all|change|P,..] [--dump-dir D]
        [--check-numerics] [--timing]  parse, verify, run passes, print the IR (like mlir-opt)
    run FILE [--input NAME=file.npy] [--dim SYM=N] [--seed S] [-o out.npz]
                                      run a module on the reference interpreter
    ops [NAME]                        list the registered ops, or show one op's schema
    bench ir-text [--ops N]           print+parse speed of an N-op module
    bench import [--model gpt2-base]  import time through each frontend
    bench passes [--model gpt2]       the default pipeline's effect on a model
    bench MODEL [--target llvm] [--batch B] [--seq S] [--repeat N] [--warmup W] [--threads K]
        [--json FILE] [--workdir DIR] [--frontend onnx|torch]
                                      latency of ours against ONNX Runtime and torch eager (MODEL:
                                      matmul, mlp, gpt2-base, bert-base, gpt2, bert, llama, resnet,
                                      mlp-int8, gpt2-int8; see compiler/bench/latency.py)

User errors (bad text, bad IR, bad options) print one message and exit with status 1, never a
Python traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np


class UserError(Exception):
    """An error in what the user gave us: printed as one message, exit status 1."""


def _read_module(path: str):
    from compiler import ir
    if path == "-":
        return ir.parse(sys.stdin.read(), filename="<stdin>")
    try:
        return ir.load(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not an IR file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (IR text expected)") from None


def cmd_opt(args: argparse.Namespace) -> int:
    """Parse, verify, run the pipeline, print or write the result."""
    from compiler import ir
    from passes import available_passes
    from passes.registry import pass_options

    if args.list_passes:
        for name, cls in sorted(available_passes().items()):
            opts = ", ".join(f"{o}: {t} = {d!r}" for o, t, d in pass_options(cls))
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"{name}{'{' + opts + '}' if opts else ''}\n    {doc}")
        return 0
    if not args.file:
        raise UserError("opt needs an IR file (or - for standard input)")
    module = _read_module(args.file)
    ir.verify(module)
    if args.pipeline is not None and args.opt_level is not None:
        raise UserError("give a pipeline (-p) or an opt level (-O), not both")
    if args.pipeline is not None or args.opt_level is not None:
        from passes.manager import PassManager
        from compiler.pipeline import default_pipeline
        text = args.pipeline if args.pipeline is not None else default_pipeline(args.opt_level)
        after = args.print_ir_after
        if after not in (None, "all", "change"):
            after = [n.strip() for n in after.split(",") if n.strip()]
        pm = PassManager.from_string(text, print_ir_after=after, dump_dir=args.dump_dir,
                                     check_numerics=args.check_numerics)
        module = pm.run(module)
        if args.timing:
            sys.stderr.write(pm.summary())
    if args.output:
        ir.save(module, args.output)
    else:
        sys.stdout.write(ir.print_module(module, inline_limit=None if args.inline_all else 16))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile a model (.onnx, IR text/file) for a target and save the compiled module."""
    import time
    import compiler
    t0 = time.perf_counter()
    try:
        mod = compiler.compile(args.file, target=args.target, opt_level=args.opt_level,
                               dump_dir=args.dump_dir)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    hit = " (from the cache)" if getattr(mod, "cache_hit", False) else ""
    print(f"compiled {args.file} for {args.target} in {time.perf_counter() - t0:.2f} s{hit}: {mod}")
    if args.output:
        if not hasattr(mod, "save"):
            raise UserError(f"target {args.target} cannot save its compiled module")
        mod.save(args.output)
        print(f"saved to {args.output} (load with compiler.load)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the entry function on given or random inputs; print a summary of each output."""
    from compiler import ir

    module = _read_module(args.file)
    ir.verify(module)
    fn = module.function(args.function) if args.function else module.main
    dims = _parse_dims(args.dim)
    given = dict(_split_pair(s, "--input") for s in args.input)
    rng = np.random.default_rng(args.seed)
    inputs = []
    for i, a in enumerate(fn.args):
        key = a.name or str(i)
        if key in given:
            try:
                inputs.append(np.load(given.pop(key)))
            except OSError as e:
                raise UserError(f"--input {key}: {e}") from None
            continue
        inputs.append(random_input(a.type, dims, module.dim_bounds, rng, what=f"%{key}"))
    if given:
        raise UserError(f"--input names no argument of @{fn.name}: {', '.join(given)}; its "
                        f"arguments are {', '.join('%' + (a.name or '?') for a in fn.args)}")
    try:
        if args.target == "interpreter":
            outs = ir.interpret(module, *inputs, function=fn.name)
        else:
            if fn is not module.main:
                raise UserError("--function works with --target interpreter only")
            import time
            import compiler
            t0 = time.perf_counter()
            mod = compiler.compile(module, target=args.target, opt_level=args.opt_level)
            hit = " (from the cache)" if getattr(mod, "cache_hit", False) else ""
            print(f"compiled for {args.target} in {time.perf_counter() - t0:.2f} s{hit}: {mod}")
            outs = mod(*inputs)
            if args.check:
                want = ir.interpret(module, *inputs)
                for i, (o, w) in enumerate(zip(outs, want)):
                    err = float(np.max(np.abs(o.astype(np.float64) - w))) if o.size else 0.0
                    print(f"output {i}: max |{args.target} - interpreter| = {err:.3g}")
    except ValueError as e:  # input checks, compile errors
        raise UserError(str(e)) from None
    for i, out in enumerate(outs):
        flat = out.reshape(-1)
        head = ", ".join(str(v) for v in flat[:6]) + (", ..." if flat.size > 6 else "")
        print(f"output {i}: {out.dtype}{list(out.shape)} [{head}]")
    if args.output:
        np.savez(args.output, *outs)
        print(f"wrote {len(outs)} outputs to {args.output}")
    return 0


def random_input(t, dims: dict[str, int], bounds: dict, rng: np.random.Generator,
                 what: str = "input") -> np.ndarray:
    """A random array of type t; symbolic dims from `dims`, else their lower bound, else 1."""
    shape = []
    for d in t.shape:
        if isinstance(d, int):
            shape.append(d)
        elif d in dims:
            shape.append(dims[d])
        else:
            shape.append(max(bounds.get(d, (1, None))[0], 1))
    npd = t.dtype.np_dtype
    if t.dtype.is_bool:
        return rng.random(shape) < 0.5
    if t.dtype.is_integral:  # narrow ints included: their whole range
        lo, hi = t.dtype.int_range()
        return rng.integers(max(lo, -100), min(hi, 100), size=shape, endpoint=t.dtype.is_narrow,
                            dtype=np.int64).astype(npd)
    if t.dtype.name == "f8e8m0":  # powers of two only: a normal draw would be mostly nan
        return np.exp2(rng.integers(-8, 9, size=shape)).astype(npd)
    return rng.standard_normal(shape).astype(npd)


def cmd_ops(args: argparse.Namespace) -> int:
    """List ops with their operands and attributes."""
    from compiler.ir import all_ops

    ops = all_ops()
    if args.name:
        if args.name not in ops:
            raise UserError(f"unknown op '{args.name}'")
        ops = {args.name: ops[args.name]}
    for name, od in sorted(ops.items()):
        operands = ", ".join(f"{n}{k}" for n, k in od.operand_specs)
        attrs = ", ".join(f"{k}: {s.kind}" + ("" if s.required else f" = {s.default!r}")
                          for k, s in od.attrs.items())
        traits = ", ".join(sorted(od.traits))
        print(f"{name}({operands})" + (f" {{{attrs}}}" if attrs else "") + f"  [{traits}]")
        if args.name or args.verbose:
            print(f"    {od.doc}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a named benchmark."""
    if args.what == "ir-text":
        from compiler.bench import ir_text
        ir_text.run(args.ops, args.repeat or 5)
        return 0
    if args.what == "import":
        from compiler.bench import import_time
        import_time.run(args.model, args.repeat or 1)
        return 0
    if args.what == "passes":
        from compiler.bench import pipeline_stats
        pipeline_stats.run(args.model if args.model != "gpt2-base" else "gpt2", args.opt_level)
        return 0
    from compiler.bench.workloads import NAMES
    if args.what in NAMES:
        return _bench_latency(args)
    raise UserError(f"unknown benchmark '{args.what}'; available: ir-text, import, passes, "
                    f"and the latency of a model: {', '.join(NAMES)}")


def _bench_latency(args: argparse.Namespace) -> int:
    """Ours against ONNX Runtime and torch eager; status 1 when ours could not be built."""
    from compiler.bench import latency
    for flag in ("batch", "seq", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag} must be at least 1, got {value}")
    try:
        res = latency.run(args.what, args.target, batch=args.batch, seq=args.seq,
                          repeat=20 if args.repeat is None else args.repeat,
                          warmup=args.warmup, threads=args.threads, json_path=args.json,
                          workdir=args.workdir, frontend=args.frontend)
    except latency.BenchError as e:
        raise UserError(str(e)) from None
    if res["errors"]:
        print(f"error: {'; '.join(f'{k}: {v}' for k, v in res['errors'].items())}",
              file=sys.stderr)
        return 1
    return 0


def _split_pair(text: str, flag: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise UserError(f"{flag} expects NAME=VALUE, got {text!r}")
    return key.lstrip("%?"), value


def _parse_dims(items: Sequence[str]) -> dict[str, int]:
    out = {}
    for s in items:
        k, v = _split_pair(s, "--dim")
        try:
            out[k] = int(v)
        except ValueError:
            raise UserError(f"--dim {k}: {v!r} is not an integer") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m compiler",
                                description="A deep-learning compiler: graph IR, passes, codegen.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    o = sub.add_parser("opt", help="parse, verify and transform IR text (like mlir-opt)")
    o.add_argument("file", nargs="?", help="IR text file, or - for standard input")
    o.add_argument("-p", "--passes", dest="pipeline", help='pipeline, e.g. "cse,prune-dead"')
    o.add_argument("-O", dest="opt_level", type=int, choices=range(4),
                   help="run the default pipeline of this opt level")
    o.add_argument("--print-ir-after", metavar="all|change|PASS,...",
                   help="print the IR to stderr after every pass, changed ones, or named ones")
    o.add_argument("--dump-dir", help="write numbered IR files and a summary per pass here")
    o.add_argument("--check-numerics", action="store_true",
                   help="after each pass, compare the interpreter's outputs on random inputs "
                        "with the unoptimized module; stop at the first pass that changes them")
    o.add_argument("--timing", action="store_true", help="print each pass's time and op counts")
    o.add_argument("-o", "--output", help="write the result here (with .safetensors weights)")
    o.add_argument("--inline-all", action="store_true", help="print every constant inline")
    o.add_argument("--list-passes", action="store_true", help="list passes and their options")
    o.set_defaults(func=cmd_opt)
    c = sub.add_parser("compile", help="compile a model for a target and save it")
    c.add_argument("file", help=".onnx model, IR text file")
    c.add_argument("--target", default="llvm", help="llvm (default), xla, tpu, interpreter")
    c.add_argument("-O", dest="opt_level", type=int, default=2)
    c.add_argument("-o", "--output", help="directory to save the compiled module in")
    c.add_argument("--dump-dir", help="write pass dumps, kernel IR and LLVM IR here")
    c.set_defaults(func=cmd_compile)
    r = sub.add_parser("run", help="run a module (the reference interpreter, or --target)")
    r.add_argument("file", help="IR text file (its .safetensors weights are read too)")
    r.add_argument("--function", help="function to run (default @main)")
    r.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input array; others are random")
    r.add_argument("--dim", action="append", default=[], metavar="SYM=N",
                   help="size of a symbolic dim for random inputs")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("-o", "--output", help="save the outputs to this .npz file")
    r.add_argument("--target", default="interpreter",
                   help="interpreter (default), llvm, xla, tpu: compile first, then run")
    r.add_argument("-O", dest="opt_level", type=int, default=2, help="opt level when compiling")
    r.add_argument("--check", action="store_true",
                   help="also run the interpreter and print the largest difference")
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("ops", help="list the registered ops")
    s.add_argument("name", nargs="?")
    s.add_argument("-v", "--verbose", action="store_true", help="show each op's doc line")
    s.set_defaults(func=cmd_ops)
    b = sub.add_parser("bench", help="run a benchmark (ir-text: print/parse speed; import: "
                                     "frontend import time; passes: the default pipeline; a "
                                     "model name: latency against ONNX Runtime and torch)")
    b.add_argument("what", help="benchmark name: ir-text, import, passes, or a model: matmul, "
                   "mlp, gpt2-base, bert-base, gpt2, bert, llama, resnet, mlp-int8, gpt2-int8")
    b.add_argument("-O", dest="opt_level", type=int, default=2, choices=range(4),
                   help="opt level of the pipeline for `passes`")
    b.add_argument("--model", default="gpt2-base", help="model for `import` (gpt2-base, gpt2, "
                   "bert, llama, resnet)")
    b.add_argument("--ops", type=int, default=10_000, help="ops in the module (ir-text)")
    b.add_argument("--repeat", type=int, default=None,
                   help="timed repeats; the median is shown (default 5 for ir-text, 1 for "
                        "import, 20 for a model's latency)")
    b.add_argument("--target", default="llvm", help="our target for a model's latency")
    b.add_argument("--batch", type=int, help="batch size (matmul: rows of a)")
    b.add_argument("--seq", type=int, help="sequence length of the language models")
    b.add_argument("--warmup", type=int, default=3, help="untimed calls per runner first")
    b.add_argument("--threads", type=int, help="threads for every runner (default: all cores)")
    b.add_argument("--json", help="also write the figures to this JSON file")
    b.add_argument("--workdir", help="where exported ONNX files are cached "
                   "(default ~/.cache/dlcompiler/bench)")
    b.add_argument("--frontend", default="onnx", choices=("onnx", "torch"),
                   help="what ours imports: the ONNX file ORT runs, or the torch module")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from compiler.ir import BuildError, InterpreterError, ParseError, VerificationError
    from passes import PassError
    from passes.manager import NumericsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (UserError, ParseError, VerificationError, PassError, BuildError,
            InterpreterError, NumericsError, KeyError) as e:
        msg = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
        # parse and verify errors already start with "file:line: error:"
        print(msg if "error:" in msg.split("\n", 1)[0] else f"error: {msg}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
