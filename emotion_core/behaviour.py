"""Behaviour tests: does the model read negation, sarcasm, hedges and typos as people mean them?

Accuracy on a split says little about the first things a person types into an emotion demo
("Oh great, another Monday.", "I never said I was scared."). Behaviour tests (CheckList, Ribeiro
et al., ACL 2020) write cases by capability, each naming what answer is accepted, and report a
pass rate per capability. The cases live in data files (`benchmarks/data/behaviour*.tsv`), one per
line: capability, expect, group, text. `expect` is a label (`joy`), labels any of which will do
(`joy|fear`), labels ruled out (`not joy`), `not-english` for a text the model should not read, or
`same` for invariance: every case of that `group` must get one label, whatever it is.
"""

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .errors import EmotionCoreError
from .labels import KNOWN_LABELS
from .model_folder import CARD, METRICS, RUN_CONFIG, read_json, write_json, write_text

NOT_ENGLISH = "not-english"
SAME = "same"
FIELDS = ["capability", "expect", "group", "text"]
MISSES_SHOWN = 2  # failed cases per capability kept in a model folder's figures, for its card


@dataclass(frozen=True)
class Case:
    capability: str
    expect: str
    group: str
    text: str

    def accepts(self, label: str | None) -> bool:
        """Whether a label (None: the model did not read the text) is an accepted answer; not for `same` cases."""
        if self.expect == NOT_ENGLISH:
            return label is None
        if self.expect.startswith("not "):
            return label is not None and label not in self.expect[4:].split("|")
        return label in self.expect.split("|")


def read_cases(path: str | Path) -> list[Case]:
    """The cases of a behaviour file, each checked: four fields, known labels, invariance groups of two or more."""
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != FIELDS:
        raise EmotionCoreError(f"{path.name}: the first line after the comments must be {' '.join(FIELDS)}")
    cases = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(FIELDS):
            raise EmotionCoreError(f"{path.name}, case {number - 1}: {len(row)} fields, not {len(FIELDS)}")
        case = Case(*(cell.strip() for cell in row))
        check_expect(case, f"{path.name}, case {number - 1}")
        cases.append(case)
    groups = defaultdict(int)
    for case in cases:
        if case.expect == SAME:
            groups[case.group] += 1
    if lonely := sorted(group for group, count in groups.items() if count < 2):
        raise EmotionCoreError(f"{path.name}: invariance groups with one case: {', '.join(lonely)}")
    return cases


def check_expect(case: Case, where: str) -> None:
    """Refuse an `expect` that names no known label, or a `same` case without a group."""
    if case.expect == SAME:
        if case.group in ("", "-"):
            raise EmotionCoreError(f"{where}: a 'same' case needs a group")
        return
    if case.expect == NOT_ENGLISH:
        return
    names = case.expect.removeprefix("not ").split("|")
    if unknown := [name for name in names if name not in KNOWN_LABELS]:
        raise EmotionCoreError(f"{where}: unknown label {unknown[0]!r} in {case.expect!r}")


def judge(cases: list[Case], labels: list[str | None]) -> list[bool]:
    """Whether each case passed, given the model's label for each (None: not read). An invariance case passes
    when every case of its group got the same label."""
    group_labels = defaultdict(set)
    for case, label in zip(cases, labels, strict=True):
        if case.expect == SAME:
            group_labels[case.group].add(label)
    return [len(group_labels[case.group]) == 1 if case.expect == SAME else case.accepts(label)
            for case, label in zip(cases, labels)]


def run_cases(classifier, cases: list[Case]) -> tuple[list[str | None], list[bool]]:
    """The classifier's label for each case, and whether each passed."""
    labels = [prediction.label for prediction in classifier.predict_batch([case.text for case in cases])]
    return labels, judge(cases, labels)


def pass_rates(cases: list[Case], passed: list[bool]) -> dict[str, tuple[int, int]]:
    """Per capability, in the order met: (cases passed, cases)."""
    rates = {}
    for case, ok in zip(cases, passed, strict=True):
        done, total = rates.get(case.capability, (0, 0))
        rates[case.capability] = (done + ok, total + 1)
    return rates


def misses(cases: list[Case], labels: list[str | None], passed: list[bool],
           limit: int = MISSES_SHOWN) -> list[dict[str, str | None]]:
    """Up to `limit` failed cases per capability: the text, what was accepted and what the model said (for an
    invariance group, one of its texts and every answer the group got)."""
    answers = defaultdict(set)
    for case, label in zip(cases, labels, strict=True):
        answers[case.group].add(label or "not read")
    out, shown, groups = [], defaultdict(int), set()
    for case, label, ok in zip(cases, labels, passed, strict=True):
        if ok or shown[case.capability] >= limit or (case.expect == SAME and case.group in groups):
            continue
        shown[case.capability] += 1
        said = label
        if case.expect == SAME:
            said = ", ".join(sorted(answers[case.group]))
            groups.add(case.group)
        out.append({"capability": case.capability, "text": case.text, "expect": case.expect, "said": said})
    return out


def record(folder: str | Path, cases_file: str, cases: list[Case], labels: list[str | None], passed: list[bool],
           before: dict[str, tuple[int, int]] | None = None) -> None:
    """Keep a model's pass rates (and the model's before it, when given) and some of its misses in its folder's
    metrics.json, and rewrite its card, which shows them: a model says what it still gets wrong."""
    from .card import build_model_card

    folder = Path(folder)
    metrics = read_json(folder / METRICS)
    metrics["behaviour"] = {"cases": cases_file, "rates": pass_rates(cases, passed),
                            **({"before": before} if before else {}), "misses": misses(cases, labels, passed)}
    write_json(folder / METRICS, metrics)
    card = build_model_card(metrics, read_json(folder / RUN_CONFIG), model_name=folder.name)
    write_text(folder / CARD, str(card))
