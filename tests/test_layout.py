"""The layout keeps its promises: modules are modules, inputs are declared once, functions stay short."""

import ast
import importlib
import pathlib
import pkgutil
import types

import scalesim as ss
from scalesim import inputs
from scalesim.interface.cli import build_parser

ROOT = pathlib.Path(ss.__file__).parent


def _submodules():
    return [m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="scalesim.")]


def test_every_submodule_imports_as_a_module_and_no_function_shadows_one():
    names = _submodules()
    assert "scalesim.chain.simulation" in names and "scalesim.solve.optimization" in names
    for name in names:
        assert isinstance(importlib.import_module(name), types.ModuleType), name
    leaves = {n.rsplit(".", 1)[-1] for n in names}
    # the core entry points load lazily (module __getattr__): look them up by name
    attrs = {k: getattr(ss, k) for k in set(vars(ss)) | {"simulate", "optimize", "validate", "logspace"}}
    public = {k for k, v in attrs.items() if callable(v) and not isinstance(v, types.ModuleType) and not k.startswith("_")}
    assert {"simulate", "optimize", "validate", "logspace"} <= public
    assert not public & leaves, public & leaves


def test_no_function_over_80_lines():
    long = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) else node.body
                if body and body[-1].end_lineno - body[0].lineno + 1 > 80:
                    long.append(f"{path.name}:{node.name}")
    assert not long


def _help(verb):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[verb]
    return sub.format_help()


def test_cli_lists_every_simulate_and_optimize_input():
    text = _help("simulate")
    for spec in inputs.SIMULATE.values():
        assert spec.flag in text, spec.name
    text = _help("optimize")
    for name, spec in inputs.optimize_inputs().items():
        assert spec.flag in text, name


def test_simulate_signature_is_the_input_table():
    import inspect

    params = [p for p in inspect.signature(ss.simulate).parameters]
    assert params == list(inputs.SIMULATE)
