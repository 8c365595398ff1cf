"""SA-DVAE's modules import one another in one direction only: the model, then the CUDA-graph iterations built on
it, then the head that picks between them. No import inside a function closes a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import zsar.heads

HEADS = Path(zsar.heads.__file__).parent
MODULES = ("sadvae_model", "sadvae_cuda_graph", "sadvae")


def _imported_heads_modules(name: str) -> set[str]:
    """zsar.heads modules that `name` imports anywhere in its source (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse((HEADS / f"{name}.py").read_text(encoding="utf-8"))):
        targets = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {t.removeprefix("zsar.heads.") for t in targets if t.startswith("zsar.heads.")}
    return found


def test_the_sadvae_modules_import_one_another_without_a_cycle():
    graph = {name: _imported_heads_modules(name) & set(MODULES) for name in MODULES}
    assert "sadvae_cuda_graph" not in graph["sadvae_model"]
    assert "sadvae" not in graph["sadvae_model"] | graph["sadvae_cuda_graph"]

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    assert [name for name in MODULES if reaches(name, name)] == []


@pytest.mark.parametrize("name", MODULES)
def test_each_sadvae_module_imports_first_in_a_fresh_interpreter(name):
    """Imported first and alone; the model module pulls in neither the graph replay nor the head."""
    code = (f"import importlib, sys; importlib.import_module('zsar.heads.{name}'); "
            "print(sorted(m for m in sys.modules if m.startswith('zsar.heads.sadvae')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
    if name == "sadvae_model":
        assert loaded == {"zsar.heads.sadvae_model"}
    assert f"zsar.heads.{name}" in loaded
