"""Word-level explanations by occlusion, on the tiny model."""

import numpy as np
import pytest

from emotion_core import EmotionCoreError
from emotion_core.calibration import Calibration, softmax
from emotion_core.explain import Explanation, explain, occlude, variants

TEXT = "i feel so happy and glad at work today"


def test_one_score_per_word_and_the_predicted_label(classifier):
    e = explain(classifier, TEXT)
    probs = classifier.predict(TEXT)
    assert e.words == TEXT.split() and len(e.scores) == len(e.words)
    assert e.label == next(iter(probs)) and e.probability == pytest.approx(probs[e.label], abs=1e-5)
    peak = max(1.0, *(abs(s) for s in e.scores))
    assert e.scaled() == pytest.approx([s / peak for s in e.scores]) and all(-1 <= s <= 1 for s in e.scaled())


@pytest.mark.parametrize("scores,scaled,faint", [
    ([4.0, -1.0, 0.0], [1.0, -0.25, 0.0], False),  # a decisive word: scaled by the largest
    ([0.02, -0.01], [0.02, -0.01], True),          # a text that says it twice: no word matters alone, nothing in full colour
    ([0.5, 0.1], [0.5, 0.1], False),
])
def test_scaled_scores_never_blow_small_effects_up(scores, scaled, faint):
    e = Explanation("joy", {"joy": 0.9}, ["w"] * len(scores), scores, list(range(len(scores))))
    assert e.scaled() == pytest.approx(scaled) and e.faint is faint


def test_the_probabilities_come_with_the_explanation(classifier):
    text = "i feel so happy and glad, https://example.com [NAME]"
    why, direct = explain(classifier, text), classifier.predict(text)
    assert why.probabilities == pytest.approx(direct, abs=1e-5)
    assert list(why.probabilities.values()) == sorted(why.probabilities.values(), reverse=True)  # highest first
    assert why.probability == why.probabilities[why.label] == max(why.probabilities.values())


@pytest.mark.parametrize("text", ["whatever 😢 😢 😢 😢", "so sad 😢 😢sad"])
def test_the_explained_text_is_the_text_the_model_reads(tiny_neutral_model, text):
    """The explanation's first row is what `predict` scores, a repeated emoji counted once as there."""
    from emotion_core import Classifier

    classifier = Classifier.from_pretrained(tiny_neutral_model, engine="torch")  # fp32: one text reads alike in any batch
    assert "emoji" in classifier.normalization
    rows, seen = variants(classifier, text.split())
    assert rows[0] == classifier.encode([text])[0]
    assert explain(classifier, text).probabilities == pytest.approx(classifier.predict(text), abs=1e-5)


def test_a_score_is_the_fall_in_log_odds_without_the_word(classifier):
    e = explain(classifier, TEXT)
    k = classifier.labels.index(e.label)
    words = TEXT.split()
    without = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    p = classifier.predict_proba([TEXT, *without])[:, k].astype(np.float64)
    odds = np.log(p) - np.log1p(-p)
    assert np.allclose(e.scores, odds[0] - odds[1:], atol=1e-4)


def test_every_variant_is_divided_by_the_temperature_of_the_text_s_answer(classifier, monkeypatch):
    k = classifier.labels.index(explain(classifier, TEXT).label)
    monkeypatch.setattr(classifier, "calibration", Calibration(2.0, {k: 0.5}))  # the answer's own temperature
    e = explain(classifier, TEXT)
    assert e.probabilities == pytest.approx(classifier.predict(TEXT), abs=1e-5)
    words = TEXT.split()
    without = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    p = softmax(classifier.logits([TEXT, *without]), 0.5)[:, k]  # 0.5 even for a variant whose answer changed
    odds = np.log(p) - np.log1p(-p)
    assert np.allclose(e.scores, odds[0] - odds[1:], atol=1e-4)


def test_mask_mode_replaces_the_word_pieces(classifier):
    words, logits, seen = occlude(classifier, TEXT, [[3]], mode="mask")
    masked = " ".join(w if i != 3 else "[MASK]" for i, w in enumerate(words))  # "happy" is one piece in the tiny vocab
    assert classifier.tokenizer.tokenize("happy") == ["happy"]
    assert np.allclose(softmax(logits)[1], classifier.predict_proba([masked])[0], atol=1e-5)
    assert seen == list(range(len(words)))


def test_a_text_longer_than_the_window_is_explained_to_its_last_word(classifier):
    text = " ".join(["happy"] * 10 + ["glad"] * 100)  # the tiny model reads 64 tokens at a time
    e = explain(classifier, text)
    assert len(e.words) == 110 and e.seen == list(range(110))  # every word scored, in pieces of the text
    assert e.label == next(iter(classifier.predict(text)))  # the document's emotion, not its first window's


def test_top_words_are_the_strongest_positive(classifier):
    e = explain(classifier, TEXT)
    top = e.top_words(3)
    assert [s for _, s in top] == sorted((s for s in e.scores if s > 0), reverse=True)[:3]
    assert e.as_dict()["words"][0] == {"word": "i", "score": e.scores[0], "scaled": e.scaled()[0]}


@pytest.mark.parametrize("text,mode,message", [
    ("   ", "delete", "Text is empty"),
    (TEXT, "shap", "Unknown occlusion mode 'shap'"),
])
def test_bad_requests_are_refused(classifier, text, mode, message):
    with pytest.raises(EmotionCoreError, match=message):
        explain(classifier, text, mode=mode)


def test_faithfulness_on_a_trained_toy_model(tmp_path, tiny_base_dir, toy_dir):
    """On the toy task one cue word gives the label away: removing the top word must hurt far more than chance."""
    from emotion_core import Classifier, train
    from emotion_core.explain import faithfulness

    out = tmp_path / "toy"
    train.main(["--base-model", str(tiny_base_dir), "--data", str(toy_dir), "--output-dir", str(out), "--epochs", "20",
                "--batch-size", "16", "--learning-rate", "3e-3", "--warmup-ratio", "0", "--max-length", "32"])
    classifier = Classifier.from_pretrained(out, engine="torch")
    # the toy model is so sure that float32 probabilities round to 1.0 and no removal moves them;
    # a high temperature keeps them graded (it changes no label)
    classifier.calibration = Calibration(20.0)
    texts = [line.rsplit(";", 1)[0] for line in (toy_dir / "test.txt").read_text().splitlines()][:30]
    for mode in ("delete", "mask"):
        report = faithfulness(classifier, texts, ks=(1, 2), mode=mode, draws=5)
        assert report[1]["texts"] == 30 and report[2]["texts"] == 30
        assert report[1]["ratio"] > 2 and report[1]["beats_random"] > 0.7, (mode, report)
        assert report[1]["top_fall"] > report[1]["random_fall"] > -1
