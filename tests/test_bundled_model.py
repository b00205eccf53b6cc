"""The bundled model: present, small, labelled in the Hub's order, and right on plain sentences."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from benchmarks.bench_behaviour import CASES
from emotion_core import Classifier
from emotion_core.behaviour import Case, judge, pass_rates, read_cases, run_cases
from emotion_core.config import BUNDLED_MODEL, PROJECT_ROOT
from emotion_core.labels import KNOWN_LABELS

PLAIN = [
    ("i feel so happy and grateful today", "joy"),
    ("i am thrilled that we won the game", "joy"),
    ("i feel so lonely and sad without you", "sadness"),
    ("i cried all night because i miss my dog", "sadness"),
    ("i feel so romantic and tender with my wife tonight", "love"),
    ("i feel so loved and cherished by my family", "love"),
    ("i am so angry that they lied to me", "anger"),
    ("i am furious with the rude waiter", "anger"),
    ("i am scared of walking home alone at night", "fear"),
    ("i feel anxious and terrified about the exam", "fear"),
    ("i am amazed by how big the ocean is", "surprise"),
    ("i was shocked and surprised by the sudden news", "surprise"),
    # the examples of text with no emotion in it
    ("The meeting has been moved to 3pm on Thursday in room 204.", "neutral"),
    ("What time is it?", "neutral"),
    ("The train to Leeds leaves from platform 4 at 9:15.", "neutral"),
]

# behaviour cases the bundled model must keep passing (from benchmarks/data/behaviour.tsv): a replacement that loses
# one of these has lost something users type
MUST_HOLD = [Case(capability, expect, "-", text) for capability, expect, text in [
    ("negation", "joy", "I don't regret moving abroad for a second, it's been wonderful."),
    ("negation", "sadness", "I don't enjoy parties anymore, they just make me feel lonely."),
    ("negation", "joy", "The results weren't bad at all, I'm thrilled."),
    ("sarcasm", "not joy", "Living the dream: third night in a row the baby hasn't slept."),
    ("hedged", "fear", "The presentation made me a tiny bit nervous."),
    ("hedged", "sadness", "A little sad to see the summer go."),
    ("hedged", "sadness", "I feel somewhat lonely now that my roommate moved out."),
    ("intensifiers", "fear", "I am beyond terrified of the storm tonight."),
    ("intensifiers", "sadness", "Everything hurts and I am so incredibly sad."),
    ("intensifiers", "anger", "I am absolutely FURIOUS with this train company!!!"),
    ("mixed", "love|anger", "I adore my cat but I'm furious she knocked my laptop off the desk."),
    ("mixed", "sadness|anger", "I'm heartbroken and angry that they cut down the old oak tree."),
    ("mixed", "fear|joy", "I'm nervous and excited about the first date tonight."),
    ("neutral", "neutral", "Turn left at the second roundabout and take the A40 towards Oxford."),
    ("neutral", "neutral", "The invoice number is 4471-B and payment is due within 30 days."),
    ("neutral", "neutral", "The meeting room on the third floor seats twelve people."),
    ("typos", "neutral", "pls send teh files by 5"),
    ("typos", "sadness", "sooo bored n sad today"),
    ("typos", "anger", "srsly so annoyed w my teammates rn"),
    ("emoji", "neutral", "📅 Team meeting moved to 3pm, room 2 🕒"),
    ("emoji", "fear", "😨😰"),
    ("emoji", "sadness", "😔 feeling so alone tonight"),
    ("not_english", "not-english", "Estoy muy feliz porque por fin aprobé el examen de conducir."),
    ("not_english", "not-english", "Me da muchísimo miedo quedarme sola en casa por la noche."),
]] + [case for case in read_cases(CASES["measured"]) if case.group in ("inv01", "inv02")]


@pytest.fixture(scope="module")
def bundled():
    return Classifier.from_pretrained()  # no argument, no EMOTION_MODEL: the bundled model


def test_bundled_model_is_the_default_and_small(bundled):
    assert bundled.source == str(BUNDLED_MODEL) and bundled.labels == list(KNOWN_LABELS)  # the six in the Hub's order, then neutral
    assert (BUNDLED_MODEL / "model.safetensors").stat().st_size < 50e6
    assert next(bundled.model.parameters()).dtype.is_floating_point and str(next(bundled.model.parameters()).dtype) == "torch.float32"


def test_bundled_metrics_meet_the_targets():
    test = json.loads((BUNDLED_MODEL / "metrics.json").read_text())["test"]
    assert test["n"] == 2000 and test["accuracy"] >= 0.93 and test["macro_f1"] >= 0.89


@pytest.mark.parametrize("text,label", PLAIN)
def test_plain_sentences(bundled, text, label):
    assert next(iter(bundled.predict(text))) == label


def test_a_long_review_with_one_furious_sentence_is_anger(bundled):
    review = ("I ordered the blender in March and it arrived within a week. The box held the jug, the base, two lids "
              "and a recipe booklet. Setup took about ten minutes and the manual explains each speed setting. "
              "The jug holds 1.5 litres and the base has four rubber feet. I used it for smoothies most mornings "
              "and for soup twice a week, and I rinsed the jug after each use as the booklet says. "
              "The lids fit tightly and the base wipes clean with a damp cloth. "
              "After six weeks the motor stopped while I was making a smoothie. "
              "Support asked for photos, then for the receipt, then for photos again, and nobody has replied since. "
              "I am furious.")
    assert len(bundled.encode([review], truncate=False)[0]) > bundled.max_length  # longer than the window
    assert next(iter(bundled.predict(review))) == "anger"
    document = bundled.analyze([review])[0]
    assert not document.whole and next(iter(document.sentences[-1].probabilities)) == "anger"
    assert all(next(iter(s.probabilities)) == "neutral" for s in document.sentences[:-1])


def test_sample_csv_scores_with_the_bundled_model(tmp_path):
    out = tmp_path / "scored.csv"
    result = subprocess.run([sys.executable, "-m", "emotion_core", "score", "examples/reviews.csv", "-o", str(out)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Scored 9 of 10 rows" in result.stdout
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == list(range(1, 11))
    assert scored.loc[scored["id"] == 1, "emotion"].item() == "joy"


def test_the_bundled_card_gives_each_figure_under_its_hub_dataset_and_split():
    """The card's model-index as the Hub reads it: each source's figures under its Hub id, per split."""
    from huggingface_hub import ModelCard

    from emotion_core.model_folder import read_json

    folder = BUNDLED_MODEL
    card, metrics = ModelCard.load(folder / "README.md"), read_json(folder / "metrics.json")
    results = {(r.dataset_type, r.dataset_config, r.dataset_split, r.metric_type, r.metric_config): r.metric_value
               for r in card.data.eval_results}
    hub = {"emotion": ("dair-ai/emotion", "split"), "goemotions": ("google-research-datasets/go_emotions", "simplified")}
    for source, (hub_id, config) in hub.items():
        for split, m in metrics["sources"][source].items():
            if split != "folded":
                assert results[(hub_id, config, split, "accuracy", None)] == round(m["accuracy"], 4)
                assert results[(hub_id, config, split, "f1", "macro")] == round(m["macro_f1"], 4)
    assert len(results) == 2 * 3  # emotion validation and test, GoEmotions validation; folded is not a Hub split
    names = {r.dataset_type: r.dataset_name for r in card.data.eval_results}  # not the data set's own 28-label task
    assert names["google-research-datasets/go_emotions"] == (f"GoEmotions ({metrics['sources']['goemotions']['validation']['n']:,} "
                                                             "rows, labels mapped by ekman-love+neutral)")
    assert sorted(card.data.datasets) == ["dair-ai/emotion", "google-research-datasets/go_emotions"]


def test_behaviour_cases_that_must_hold(bundled):
    _, passed = run_cases(bundled, MUST_HOLD)
    assert [case.text for case, ok in zip(MUST_HOLD, passed) if not ok] == []


def test_behaviour_is_what_the_card_says(bundled):
    """Every measured case, against the pass rates the card shows (another CPU's rounding may move one case)."""
    recorded = json.loads((BUNDLED_MODEL / "metrics.json").read_text())["behaviour"]["rates"]
    cases = read_cases(CASES["measured"])
    labels, _ = run_cases(bundled, cases)
    rates = pass_rates(cases, judge(cases, labels))
    assert rates.keys() == recorded.keys()
    for capability, (done, total) in rates.items():
        assert total == recorded[capability][1] and abs(done - recorded[capability][0]) <= 1, capability
    assert "## Behaviour" in (BUNDLED_MODEL / "README.md").read_text()
