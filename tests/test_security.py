"""Safe by default, checked in the source: no remote code, safetensors only."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*ROOT.glob("emotion_core/*.py"), *ROOT.glob("*.py"), *ROOT.glob("benchmarks/*.py")]


def calls(name: str):
    """Every call of `<something>.name(...)` in the project's Python files, with where it is."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                yield path, node


def test_models_are_loaded_without_remote_code_and_from_safetensors_only():
    loads = [(p, n) for p, n in calls("from_pretrained") if "Model" in ast.unparse(n.func)]
    assert len(loads) >= 2
    for path, node in loads:
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        where = f"{path.name}:{node.lineno}"
        assert keywords.get("trust_remote_code") == "False", where
        assert keywords.get("use_safetensors") == "True" or "benchmarks" in str(path), where


def test_remote_code_is_never_switched_on():
    for path in SOURCES:
        assert "trust_remote_code=True" not in path.read_text(), path
