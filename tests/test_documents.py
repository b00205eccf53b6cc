"""Whole documents: sentences, windows for text without breaks, and how pieces combine into one answer."""

import subprocess
import sys

import numpy as np
import pytest

from emotion_core import Classifier
from emotion_core.documents import combine, sentence_spans, word_windows
from emotion_core.explain import explain

LABELS = ["sadness", "joy", "anger", "neutral"]
NEUTRAL_SENTENCE = "the quick brown fox jumps over the lazy dog at work."


@pytest.fixture(scope="module")
def neutral_classifier(tiny_neutral_model):
    return Classifier.from_pretrained(tiny_neutral_model, engine="torch")


def texts_of(text, spans):
    return [text[a:b] for a, b in spans]


def test_sentences_are_split_where_a_reader_would():
    text = "Dr. Smith came at 3 p.m. on Monday. He was late!!! I am furious.\n\nNew paragraph without a stop"
    assert texts_of(text, sentence_spans(text)) == [
        "Dr. Smith came at 3 p.m. on Monday.", "He was late!!!", "I am furious.", "New paragraph without a stop"]


@pytest.mark.parametrize("text, sentences", [
    ("i am sad. i am lonely!! e.g. this is one. so is dr. who",
     ["i am sad.", "i am lonely!!", "e.g. this is one.", "so is dr. who"]),
    ("ab. cd. ef", ["ab.", "cd.", "ef"]),  # each stop seen, though the sentences are a word each
    ('she said "never." then she left', ['she said "never."', "then she left"]),  # a stop inside quotes
])
def test_lower_case_sentences_are_split_and_abbreviations_are_not(text, sentences):
    assert texts_of(text, sentence_spans(text)) == sentences


def test_a_long_run_of_stops_is_split_at_once():
    """Ten thousand stops in a row took a backtracking pattern minutes, with every thread of a server waiting."""
    code = "from emotion_core.documents import sentence_spans; print(sentence_spans('!' * 10_000 + ' i am sad. ' + '.' * 10_000))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[(0, 10010)]"


@pytest.mark.parametrize("text", ["", "   ", "\n\n", ". . . ! ?"])
def test_no_empty_sentences(text):
    assert all(piece.strip() for piece in texts_of(text, sentence_spans(text)))


def test_empty_sentences_between_real_ones_are_dropped():
    text = "I am sad.  \n\n . \n\n !!! \n\n Then I was happy. 😡"
    assert texts_of(text, sentence_spans(text)) == ["I am sad.", "Then I was happy.", "😡"]


def test_windows_cover_a_text_without_breaks_and_overlap():
    text = " ".join(f"w{i}" for i in range(100))
    windows = word_windows(text, 0, len(text), lambda words: [1] * len(words), budget=10)
    words = [text[a:b].split() for a, b in windows]
    assert all(len(w) <= 10 for w in words)
    assert words[0][0] == "w0" and words[-1][-1] == "w99"
    for before, after in zip(words, words[1:]):  # each window repeats half the one before: no phrase only ever cut
        assert after[0] in before and before[-1] in after
    assert {w for window in words for w in window} == set(text.split())


def test_windows_without_overlap_partition_the_words():
    text = " ".join(f"w{i}" for i in range(25))
    windows = word_windows(text, 0, len(text), lambda words: [2] * len(words), budget=10, overlap=0.0)
    assert [text[a:b].split() for a, b in windows] == [text.split()[i:i + 5] for i in range(0, 25, 5)]


def test_a_word_longer_than_the_window_is_a_window_of_its_own():
    text = "short " + "x" * 500 + " tail"
    windows = word_windows(text, 0, len(text), lambda words: [len(w) for w in words], budget=50)
    assert texts_of(text, windows) == ["short", "x" * 500, "tail"]


def test_combine_one_emotional_piece_among_neutral_ones():
    probs = np.array([[0.05, 0.10, 0.05, 0.80]] * 8 + [[0.02, 0.03, 0.90, 0.05]])
    doc = combine(probs, LABELS)
    assert LABELS[doc.argmax()] == "anger" and doc.sum() == pytest.approx(1.0)
    assert doc[3] == pytest.approx(0.05)  # neutral: no more than the most emotional piece's


def test_combine_all_neutral_is_neutral_and_six_label_models_weigh_by_confidence():
    all_neutral = np.array([[0.3, 0.1, 0.1, 0.5], [0.1, 0.35, 0.1, 0.45]])
    assert LABELS[combine(all_neutral, LABELS).argmax()] == "neutral"
    six = np.array([[0.4, 0.35, 0.25], [0.0, 0.05, 0.95]])
    doc = combine(six, ["sadness", "joy", "anger"])
    assert doc.argmax() == 2 and doc.sum() == pytest.approx(1.0)


def test_one_emotional_sentence_among_neutral_ones_is_that_emotion(neutral_classifier):
    document = " ".join([NEUTRAL_SENTENCE] * 6 + ["i feel so furious and angry today."] + [NEUTRAL_SENTENCE] * 3)
    assert len(neutral_classifier.encode([document], truncate=False)[0]) > neutral_classifier.max_length
    assert next(iter(neutral_classifier.predict(document))) == "anger"
    truncated = neutral_classifier.logits([document])[0]  # what the model read before: the first window only
    assert neutral_classifier.labels[truncated.argmax()] == "neutral"
    analysed = neutral_classifier.analyze([document])[0]
    assert not analysed.whole and len(analysed.sentences) == 10
    assert [s.label for s in analysed.sentences].count("anger") == 1
    assert analysed.label == "anger"
    assert analysed.probabilities == pytest.approx(neutral_classifier.predict(document), abs=1e-6)
    only_neutral = " ".join([NEUTRAL_SENTENCE] * 10)
    assert next(iter(neutral_classifier.predict(only_neutral))) == "neutral"


def test_a_document_without_any_break_is_read_in_windows(neutral_classifier):
    document = " ".join(["the quick brown fox jumps over the lazy dog"] * 12 + ["so furious and angry"] * 10)
    assert sentence_spans(document) == [(0, len(document))]
    analysed = neutral_classifier.analyze([document])[0]
    assert len(analysed.sentences) > 2 and analysed.label == "anger"
    for sentence in analysed.sentences:
        assert len(neutral_classifier.encode([sentence.text], truncate=False)[0]) <= neutral_classifier.max_length


def test_a_text_of_one_sentence_is_scored_whole_and_unchanged(neutral_classifier):
    text = "i feel so happy and glad"
    analysed = neutral_classifier.analyze([text])[0]
    assert analysed.whole and [s.text for s in analysed.sentences] == [text]
    assert analysed.sentences[0].probabilities == analysed.probabilities
    assert analysed.probabilities == pytest.approx(neutral_classifier.predict(text), abs=1e-6)
    expected = neutral_classifier.calibration.probabilities(neutral_classifier.logits([text]))[0]
    assert neutral_classifier.predict_proba([text])[0] == pytest.approx(expected, abs=1e-6)


def test_a_short_text_of_several_sentences_is_still_scored_whole(neutral_classifier):
    text = "the fox jumps. i am so happy!"
    analysed = neutral_classifier.analyze([text])[0]
    assert analysed.whole and [s.text for s in analysed.sentences] == ["the fox jumps.", "i am so happy!"]
    whole = neutral_classifier.predict(text)  # the whole text, as the model was trained
    assert list(analysed.probabilities) == list(whole)
    assert list(analysed.probabilities.values()) == pytest.approx(list(whole.values()), abs=1e-6)
    assert [s.label for s in analysed.sentences] == ["neutral", "joy"]


def test_a_10000_character_text_is_read_to_the_end(neutral_classifier):
    text = (NEUTRAL_SENTENCE + " ") * 190 + "so furious and angry."
    assert len(text) > 10_000
    analysed = neutral_classifier.analyze([text])[0]
    assert analysed.label == "anger" and analysed.sentences[-1].text == "so furious and angry."
    assert sum(analysed.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    mixed = neutral_classifier.predict_batch(["i am so sad", text, "so happy"])  # short and long in one call
    assert next(iter(mixed[1])) == "anger"
    assert mixed[0] == pytest.approx(neutral_classifier.predict("i am so sad"), abs=1e-6)


def test_a_long_document_is_explained_sentence_by_sentence(neutral_classifier):
    document = " ".join([NEUTRAL_SENTENCE] * 6 + ["i feel so furious today."])
    why = explain(neutral_classifier, document)
    assert why.label == "anger" and why.words == document.split() and len(why.seen) == len(why.words)
    assert why.top_words(1)[0][0] == "furious"
    assert why.probabilities == pytest.approx(neutral_classifier.predict(document), abs=1e-6)
