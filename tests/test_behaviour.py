"""Behaviour cases: the files parse, each kind of `expect` is judged as documented, and a model runs through them."""

import pytest

from benchmarks.bench_behaviour import CASES
from emotion_core.behaviour import Case, judge, pass_rates, read_cases, record, run_cases
from emotion_core.errors import EmotionCoreError

HEADER = "capability\texpect\tgroup\ttext\n"


def write(tmp_path, body: str):
    path = tmp_path / "cases.tsv"
    path.write_text("# a comment\n" + HEADER + body, encoding="utf-8")
    return path


def test_each_kind_of_expect():
    assert Case("c", "joy", "-", "t").accepts("joy") and not Case("c", "joy", "-", "t").accepts("anger")
    assert Case("c", "joy|fear", "-", "t").accepts("fear")
    assert Case("c", "not joy|love", "-", "t").accepts("anger")
    assert not Case("c", "not joy|love", "-", "t").accepts("love")
    assert not Case("c", "not joy", "-", "t").accepts(None)  # a text the model did not read passes no "not" case
    assert Case("c", "not-english", "-", "t").accepts(None) and not Case("c", "not-english", "-", "t").accepts("neutral")


def test_invariance_passes_only_when_the_whole_group_agrees():
    cases = [Case("invariance", "same", "g1", "Ana won."), Case("invariance", "same", "g1", "Bo won."),
             Case("invariance", "same", "g2", "Ana lost."), Case("invariance", "same", "g2", "Bo lost."),
             Case("negation", "not joy", "-", "Not happy.")]
    assert judge(cases, ["joy", "joy", "sadness", "anger", "sadness"]) == [True, True, False, False, True]
    assert pass_rates(cases, [True, True, False, False, True]) == {"invariance": (2, 4), "negation": (1, 1)}


def test_read_cases(tmp_path):
    cases = read_cases(write(tmp_path, "negation\tnot joy\t-\tNothing about this makes me happy.\n"
                                       "invariance\tsame\tg\tAna smiled.\ninvariance\tsame\tg\tBo smiled.\n"))
    assert cases[0] == Case("negation", "not joy", "-", "Nothing about this makes me happy.") and len(cases) == 3


@pytest.mark.parametrize("body, message", [
    ("negation\tnot joy\tNothing.\n", "3 fields, not 4"),
    ("negation\thappiness\t-\tYay.\n", "unknown label 'happiness'"),
    ("invariance\tsame\tg\tAna smiled.\n", "invariance groups with one case: g"),
    ("invariance\tsame\t-\tAna smiled.\n", "a 'same' case needs a group"),
])
def test_bad_case_files_say_what_is_wrong(tmp_path, body, message):
    with pytest.raises(EmotionCoreError, match=message):
        read_cases(write(tmp_path, body))


def test_the_shipped_cases_are_apart_and_cover_every_capability():
    measured, tuning = read_cases(CASES["measured"]), read_cases(CASES["tuning"])
    assert len(measured) >= 400
    assert not {case.text for case in measured} & {case.text for case in tuning}
    capabilities = {"negation", "sarcasm", "hedged", "intensifiers", "mixed", "neutral", "invariance", "typos",
                    "emoji", "not_english"}
    assert {case.capability for case in measured} == capabilities == {case.capability for case in tuning}


def test_a_model_runs_through_the_cases(classifier, tmp_path):
    cases = read_cases(write(tmp_path, "neutral\tneutral\t-\tThe bus leaves at nine.\n"
                                       "not_english\tnot-english\t-\tEstoy muy feliz porque aprobé el examen hoy.\n"
                                       "invariance\tsame\tg\ti feel happy today\ninvariance\tsame\tg\ti feel happy today!\n"))
    labels, passed = run_cases(classifier, cases)
    assert labels[1] is None and passed[1]  # the language step runs before the model
    assert all(label in classifier.labels for label in labels[:1] + labels[2:])
    assert passed == judge(cases, labels)


def test_recorded_results_show_in_the_card(tiny_neutral_model, tmp_path):
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_neutral_model, folder)
    cases = [Case("negation", "not joy", "-", "Nothing | about this makes me happy."),
             Case("negation", "not joy", "-", "I am not glad."), Case("sarcasm", "anger", "-", "Oh great, another Monday."),
             Case("invariance", "same", "g", "Ana is fed up."), Case("invariance", "same", "g", "Bo is fed up.")]
    labels = ["joy", "anger", "anger", "anger", "neutral"]
    record(folder, "behaviour.tsv", cases, labels, judge(cases, labels), before={"negation": (0, 2)})
    behaviour = json.loads((folder / "metrics.json").read_text())["behaviour"]
    assert behaviour["rates"] == {"negation": [1, 2], "sarcasm": [1, 1], "invariance": [0, 2]}
    assert behaviour["misses"] == [{"capability": "negation", "text": "Nothing | about this makes me happy.",
                                    "expect": "not joy", "said": "joy"},
                                   {"capability": "invariance", "text": "Ana is fed up.", "expect": "same",
                                    "said": "anger, neutral"}]  # one line per group, with every answer it got
    card = (folder / "README.md").read_text()
    assert "| negation | 2 | 50% | 0% |" in card and "| sarcasm | 1 | 100% |  |" in card
    assert "| negation | Nothing \\| about this makes me happy. | not joy | joy |" in card
