"""Docs that can't go stale: README flags exist, public functions explain themselves, examples run."""

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import emotion_core
from emotion_core import train
from emotion_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = README + "".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))  # what a reader is told to type


def test_every_train_flag_in_the_docs_exists(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    help_out = capsys.readouterr().out
    used = set(re.findall(r"python train\.py[^\n`]*", DOCS))
    flags = {flag for line in used for flag in re.findall(r"(--[a-z][a-z0-9-]+)", line)}
    assert flags, "README shows train.py commands"
    assert sorted(flag for flag in flags if flag not in help_out) == []


def test_every_score_flag_in_the_docs_exists():
    help_out = build_parser()._subparsers._group_actions[0].choices["score"].format_help()
    lines = re.findall(r"emotion_core score[^\n`]*", DOCS)
    flags = {flag for line in lines for flag in re.findall(r"(--[a-z][a-z0-9-]+)", line)}
    assert flags and sorted(flag for flag in flags if flag not in help_out) == []


def test_public_functions_have_docstrings():
    missing = []
    for module_info in pkgutil.iter_modules(emotion_core.__path__):
        if module_info.name == "__main__":
            continue
        module = importlib.import_module(f"emotion_core.{module_info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
    assert missing == []


def test_readme_first_screen_has_the_two_setup_commands():
    first_screen = "\n".join(README.splitlines()[:40])
    assert "bash setup.sh && " in first_screen and "bash setup.sh --dev && .venv/bin/python -m pytest" in first_screen
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash setup.sh --dev && .venv/bin/python -m pytest" in ci


def test_example_script_runs(tiny_model_dir):
    env = {**os.environ, "EMOTION_MODEL": str(tiny_model_dir)}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "classify.py")], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len((ROOT / "examples" / "sentences.txt").read_text().split("\n")) - 1


def commands(parser=None, prefix=()) -> list[tuple[str, ...]]:
    """Every command of the command line, nested ones (space build) included."""
    parser = parser or build_parser()
    found = []
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        nested = sub._subparsers is not None
        found += commands(sub, (*prefix, name)) if nested else [(*prefix, name)]
    return found


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_answers_help_and_is_in_the_readme_table(command, capsys):
    from emotion_core.cli import main

    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0 and f"usage: emotion {' '.join(command)}" in capsys.readouterr().out
    assert f"| `emotion {' '.join(command)}` |" in README


def test_every_benchmark_command_in_the_docs_names_a_module_and_its_flags():
    docstrings = "".join(path.read_text() for path in (ROOT / "benchmarks").glob("*.py"))
    lines = re.findall(r"python -m benchmarks\.([a-z_]+)([^\n`]*)", DOCS + docstrings)
    assert len({name for name, _ in lines}) >= 8
    for name, rest in lines:
        source = ROOT / "benchmarks" / f"{name}.py"
        assert source.is_file(), name
        flags = re.findall(r"(--[a-z][a-z0-9-]+)", rest)
        assert [flag for flag in flags if f'"{flag}"' not in source.read_text()] == [], (name, rest)
