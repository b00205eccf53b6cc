"""Choose training settings honestly: a grid fixed in a file beforehand, chosen on validation alone.

    $ python -m emotion_core sweep examples/sweep/bundled.json --out runs/sweep --jobs 6

Each run is `emotion train` with the grid's common flags plus its own, in its own process (several at
once share a GPU well; small models leave it mostly idle). The winner is the run with the best
mean over sources of validation macro-F1, so a large source cannot drown a small one; ties go
to the run listed first. A grid may name another rule, `{"choose": "calibration", "min_score": F}`:
the lowest validation ECE after temperature scaling among the runs whose score is at least F;
adding `"max_ece": E` also asks for an ECE below E (say, the bundled model's), so a grid that
finds nothing better reads no test figures at all. Either rule may add `"require"`: floors and
ceilings on any validation figure of a run's metrics.json, each `[path, ">=" or "<=", number]`
(e.g. `["sources.goemotions.folded.per_class.neutral.answered", "<=", 0.25]`); only runs that meet
them all are chosen from, and with `"fallback": "most_met"` a grid where none does takes the runs
that meet the most.
Only the winner's test figures are printed: the others' stay in their folders, unread, so the
test split is looked at once.
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import EmotionCoreError
from .evaluation import summary_lines
from .model_folder import METRICS, read_json, write_json
from .sources import FOLDED


def load_grid(path: str | Path) -> dict:
    """A grid file's JSON object, checked for its runs; EmotionCoreError giving the expected shape when it is not one."""
    try:
        grid = json.loads(Path(path).read_text())
        runs = grid["runs"]
        runs_ok = bool(runs) and all(isinstance(flags, list) for flags in runs.values())
    except (OSError, json.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
        raise EmotionCoreError(f"{path}: not a sweep grid ({type(exc).__name__}: {exc}); "
                               'expected {"common": [flags], "runs": {"name": [flags], ...}}') from None
    if not runs_ok:
        raise EmotionCoreError(f"{path}: 'runs' must map each run's name to a list of `emotion train` flags")
    return grid


def read_grid(path: str | Path) -> dict[str, list[str]]:
    """The runs of a grid file, each as its full list of `emotion train` flags."""
    grid = load_grid(path)
    return {name: [*grid.get("common", []), *flags] for name, flags in grid["runs"].items()}


def read_rule(path: str | Path) -> dict:
    """The grid's rule: {"choose": "macro_f1"} unless it names {"choose": "calibration", "min_score": F[, "max_ece": E]};
    either may add "require" (a list of [metrics path, ">=" or "<=", number]) and "fallback": "most_met"."""
    rule = load_grid(path).get("rule", {"choose": "macro_f1"})
    choice = rule.get("choose") if isinstance(rule, dict) else None
    known = choice == "macro_f1" or (choice == "calibration" and is_number(rule.get("min_score"))
                                     and is_number(rule.get("max_ece", 1.0)))
    if known and valid_requirements(rule.get("require", [])) and rule.get("fallback") in (None, "most_met"):
        return rule
    raise EmotionCoreError(f'{path}: unknown rule {rule!r}; expected {{"choose": "macro_f1"}} or '
                           '{"choose": "calibration", "min_score": 0.89} (optionally with "max_ece": 0.02), either with '
                           'optional "require": [["sources.emotion.validation.accuracy", ">=", 0.93], ...] and "fallback": "most_met"')


def valid_requirements(require) -> bool:
    """A list of [dotted path, ">=" or "<=", number] triples; EmotionCoreError for a path outside the validation
    figures (validation, folded): the test split plays no part in a choice."""
    valid = isinstance(require, list) and all(
        isinstance(r, list) and len(r) == 3 and isinstance(r[0], str) and r[1] in (">=", "<=") and is_number(r[2])
        for r in require)
    for path, *_ in require if valid else []:
        if not {"validation", FOLDED} & set(path.split(".")) or "test" in path.split("."):
            raise EmotionCoreError(f"A requirement reads {path!r}: choices are made on validation figures alone "
                                   "(validation or folded), never on test.")
    return valid


def is_number(value) -> bool:
    """A JSON number; true and false are not thresholds."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def figure(metrics: dict, path: str) -> float | None:
    """The number at a dotted path of metrics.json ("sources.emotion.validation.accuracy"), None when it is absent."""
    value = metrics
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if is_number(value) else None


def check_requirements(metrics: dict, require: list) -> list[dict]:
    """Each requirement with the run's figure and whether it is met (an absent figure is not)."""
    checks = []
    for path, op, bound in require:
        value = figure(metrics, path)
        met = value is not None and (value >= bound if op == ">=" else value <= bound)
        checks.append({"figure": path, "op": op, "bound": bound, "value": value, "met": met})
    return checks


def choose(results: dict, rule: dict) -> str | None:
    """The winner among finished runs by the rule (ties go to the first listed); None when no run qualifies."""
    finished = [name for name, r in results.items() if "score" in r]
    met = {name: sum(check["met"] for check in results[name].get("checks", [])) for name in finished}
    needed = len(rule.get("require", []))
    if rule.get("fallback") == "most_met" and finished and not any(met[name] == needed for name in finished):
        needed = max(met.values())
    finished = [name for name in finished if met[name] == needed]
    if rule["choose"] == "macro_f1":
        return max(finished, key=lambda name: results[name]["score"], default=None)  # max keeps the first of equals
    eligible = [name for name in finished if results[name]["score"] >= rule["min_score"]
                and results[name]["ece"] is not None and results[name]["ece"] < rule.get("max_ece", float("inf"))]
    return min(eligible, key=lambda name: results[name]["ece"], default=None)


def describe_rule(rule: dict) -> str:
    """The rule in words, for sweep.json and the table."""
    if rule["choose"] == "macro_f1":
        words = "mean over sources of validation macro-F1"
    else:
        words = (f"lowest validation ECE after temperature scaling, among runs whose mean over sources of "
                 f"validation macro-F1 is at least {rule['min_score']}")
        words += f" and whose ECE is below {rule['max_ece']:.2%}" if "max_ece" in rule else ""
    if rule.get("require"):
        words += ", among runs with " + "; ".join(f"{path} {op} {bound}" for path, op, bound in rule["require"])
        words += " (else those that meet the most)" if rule.get("fallback") == "most_met" else ""
    return words


def train_one(name: str, flags: list[str], out: Path, threads: int) -> int:
    """Run `emotion train` for one grid point, its output going to OUT/NAME.log; return its exit status."""
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "TQDM_MININTERVAL": "30"}
    with open(out / f"{name}.log", "w") as log:
        command = [sys.executable, "-m", "emotion_core", "train", *flags, "--output-dir", str(out / name)]
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def validation_score(metrics: dict) -> float:
    """Mean over sources of validation macro-F1 (the validation macro-F1 itself for one source)."""
    sources = metrics.get("sources") or {"all": {"validation": metrics["validation"]}}
    scores = [by_split["validation"]["macro_f1"] for by_split in sources.values()]
    return sum(scores) / len(scores)


def run_figures(metrics: dict) -> dict:
    """What a rule needs of a finished run: its validation score, its validation ECE after temperature scaling
    (None if it was never calibrated) and its training time."""
    return {"score": validation_score(metrics), "ece": metrics.get("calibration", {}).get("validation", {}).get("ece_after"),
            "train_runtime_s": metrics["train_runtime_s"]}


def run_sweep(grid_file: str | Path, out: str | Path, jobs: int = 1) -> dict:
    """Train every run of the grid (`jobs` at a time), choose on validation, write OUT/sweep.json."""
    if jobs < 1:
        raise EmotionCoreError("--jobs must be at least 1")
    runs, rule = read_grid(grid_file), read_rule(grid_file)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        status = dict(zip(runs, pool.map(lambda item: train_one(*item, out, threads), runs.items())))
    results = {}
    for name, flags in runs.items():
        metrics_file = out / name / METRICS
        if status[name] != 0 or not metrics_file.is_file():
            results[name] = {"flags": flags, "failed": f"exit status {status[name]}; see {out / f'{name}.log'}"}
            continue
        metrics = read_json(metrics_file)
        results[name] = {"flags": flags, **run_figures(metrics),
                         "validation": {s: m["validation"]["macro_f1"] for s, m in metrics.get("sources", {}).items()},
                         "checks": check_requirements(metrics, rule.get("require", []))}
    if not any("score" in r for r in results.values()):
        raise EmotionCoreError(f"every run failed; see the logs in {out}")
    chosen = choose(results, rule)
    summary = {"grid": str(grid_file), "rule": describe_rule(rule), "chosen": chosen,
               "wall_s": time.perf_counter() - start, "runs": results}
    write_json(out / "sweep.json", summary)
    return summary


def summary_table(summary: dict, out: str | Path) -> list[str]:
    """Validation figures of every run, then every figure of the chosen run (its test split included)."""
    lines = ["| run | mean validation macro-F1 | per source | validation ECE | required met | train s |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for name, r in summary["runs"].items():
        if "failed" in r:
            lines.append(f"| {name} | failed | {r['failed']} | | | |")
            continue
        per_source = ", ".join(f"{s} {f:.4f}" for s, f in r["validation"].items())
        mark = " (chosen)" if name == summary["chosen"] else ""
        ece = "—" if r["ece"] is None else f"{100 * r['ece']:.2f}%"
        met = f"{sum(c['met'] for c in r['checks'])}/{len(r['checks'])}" if r.get("checks") else "—"
        lines.append(f"| {name}{mark} | {r['score']:.4f} | {per_source} | {ece} | {met} | {r['train_runtime_s']:.0f} |")
    if summary["chosen"] is None:
        return lines + ["", f"no run meets the rule ({summary['rule']}); no test figures read"]
    metrics = read_json(Path(out) / summary["chosen"] / METRICS)
    return lines + ["", f"chosen: {summary['chosen']} ({Path(out) / summary['chosen']})", *summary_lines(metrics)]
