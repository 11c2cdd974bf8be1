"""The package's shape, checked: imports point one way between layers, no module imports itself back
through others, every module imports on its own, `augment` never imports Prefect or `flows`, and no
function outgrows a screen.

Layers, top to bottom: faces (the CLI and its demo, the imbalanced-learn sampler; `flows/` beside them)
-> the pipeline (the stage sequence) -> the stages -> foundations (everything else).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "augment"
# the package itself is a face: `augment.GANOverSampler` is its public entry point (imported lazily)
FACES = {"augment", "augment.cli", "augment.demo", "augment.sampler"}
MAX_FUNCTION_LINES = 80
WATCHED = ("augment", "flows", "prefect")


def layer(module: str) -> int:
    if module in FACES:
        return 3
    if module == "augment.pipeline":
        return 2
    if module == "augment.stages" or module.startswith("augment.stages."):
        return 1
    return 0


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path, top_level_only: bool, type_checking: bool = False) -> set[str]:
    """The augment modules `path` imports (TYPE_CHECKING blocks only with type_checking); with
    top_level_only, only those imported while the module itself is being imported."""
    found: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] in WATCHED)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in WATCHED:
                submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
                found.update(submodules or [node.module])
            if not (top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
                visit(ast.iter_child_nodes(node))

    visit(ast.parse(path.read_text()).body)
    return found


def test_imports_point_down_the_layers_only():
    upward = []
    for name, path in MODULES.items():
        for target in imports(path, top_level_only=False):
            if target.split(".")[0] in ("flows", "prefect"):
                upward.append(f"{name} imports {target}")
            elif target in MODULES and layer(target) > layer(name):
                upward.append(f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})")
    assert not upward, upward


def test_no_import_cycles_among_modules_annotations_included():
    """Imports at import time and under TYPE_CHECKING both count: a cycle through annotations is still two
    modules that each need the other's meaning."""
    graph = {name: {t for t in imports(path, top_level_only=True, type_checking=True) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def walk(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := walk(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = walk(start, [])
            assert cycle is None, " -> ".join(cycle)


def test_no_stage_imports_another_stage():
    """Stages hand each other files in the work folder (augment.work_files reads them), never code."""
    def is_stage(m: str) -> bool:
        return m.startswith("augment.stages.")

    crossing = [f"{name} imports {t}" for name, path in MODULES.items() if is_stage(name)
                for t in imports(path, top_level_only=False, type_checking=True) if is_stage(t) and t != name]
    assert not crossing, crossing


def test_the_config_layer_loads_without_torch_or_model_code():
    """Settings are validated through augment.variants' data, so reading a config loads no network code."""
    assert_no_module_loaded("import augment.config; augment.config.build_config(sets=['model.variant=cgan'])",
                            "m == 'torch' or m.startswith('augment.models')")


def test_every_module_imports_first_and_alone():
    """Each module imported first among augment's own, in a fresh state (third-party packages stay loaded,
    so this is fast): an import that only works after another module was imported would fail here."""
    code = (
        "import importlib, sys\n"
        f"names = {sorted(MODULES)!r}\n"
        "bad = []\n"
        "for name in names:\n"
        "    for m in [m for m in sys.modules if m == 'augment' or m.startswith('augment.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        bad.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_importing_augment_does_not_import_prefect():
    assert_no_module_loaded("import augment, augment.pipeline, augment.cli, augment.demo, augment.sampler",
                            "m == 'prefect' or m.startswith(('prefect.', 'flows'))")


def assert_no_module_loaded(statements: str, bad_module: str) -> None:
    """Run `statements` in a fresh interpreter; no module name `m` there may satisfy the `bad_module` test."""
    code = f"import sys; {statements}; bad = sorted(m for m in sys.modules if {bad_module}); print(bad); " \
           "sys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_function_is_longer_than_a_screen():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long
