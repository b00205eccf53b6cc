"""The language step: a text clearly in another language gets no emotion, on every path, and says why; short,
unclear and mostly English texts are read as English."""

import numpy as np
import pandas as pd
import pytest

from emotion_core import Classifier, EmotionCoreError
from emotion_core.batch import score_csv
from emotion_core.cli import main as cli
from emotion_core.feedback import correction_for
from emotion_core.language import detect_languages, language_name, not_english_message

OTHER = {  # a sentence in each of several languages and scripts
    "es": "Estoy muy feliz porque aprobé el examen de matemáticas.",
    "de": "Ich bin so wütend auf meinen Chef, er hört mir nie zu.",
    "fr": "Je suis tellement déçu par ce restaurant, quelle arnaque.",
    "ar": "أنا خائف جدا من الامتحان",
    "zh": "我今天非常开心，因为考试通过了。",
    "ja": "今日はとても悲しい気分です。",
    "ru": "Я очень устал после работы сегодня.",
    "hi": "मैं आज बहुत खुश हूँ क्योंकि मेरा दोस्त आया",
}
ENGLISH_ALL_THE_SAME = [  # a word or two, an emoji, a link, a number, a name, foreign phrases in English, typed English
    "lol", "ok", "😀😀😀", "https://example.com/a/b", "12345", "Maria", "Bonjour!", "Gracias amigo", "@user #blessed 🙏",
    "I love this place, c'est la vie!", "We said mazel tov and danced all night",
    "my abuela made the best tamales, gracias a dios", "The party was muy bueno, I loved it",
    "Merci beaucoup for the lovely flowers, you made my day", "im feeling ugly", "im sooo happpy rn omg", "I'm so nervous!",
    "Cool story bro",
    "Oh great, another Monday.", "Nothing about this makes me happy.",
]


def test_texts_in_other_languages_are_named():
    assert detect_languages(list(OTHER.values())) == list(OTHER)


def test_a_text_in_another_script_is_never_english():
    """fastText's compressed model knows none of these characters, and then says "en": lingua names the language."""
    assert detect_languages(["还是打不开。", "Спасибо большое"]) == ["zh", "ru"]


@pytest.mark.parametrize("text", ENGLISH_ALL_THE_SAME)
def test_short_unclear_and_mostly_english_texts_are_read_as_english(text):
    assert detect_languages([text]) == ["en"]


def test_the_message_names_the_language_in_words():
    assert not_english_message("es") == "This model reads English; this looks like Spanish."
    assert language_name("no") == "Bokmal" and language_name("zz") == "another language (zz)"


def test_predict_gives_no_emotion_to_another_language_and_says_why(classifier):
    prediction = classifier.predict(OTHER["es"])
    assert prediction == {} and prediction.label is None and prediction.language == "es"
    assert prediction.as_dict() == {"emotion": None, "language": "es", "probabilities": {},
                                    "message": "This model reads English; this looks like Spanish."}
    english = classifier.predict("i feel happy today")
    assert english.language == "en" and english.label == next(iter(english)) and english.message is None
    assert english.as_dict() == {"emotion": english.label, "language": "en", "probabilities": dict(english)}


def test_a_batch_reads_its_english_texts_as_it_reads_each_alone(classifier):
    texts = ["i feel happy today", OTHER["de"], "so sad and lonely", OTHER["zh"]]
    batch = classifier.predict_batch(texts)
    assert [p.language for p in batch] == ["en", "de", "en", "zh"] and batch[1] == {} and batch[3] == {}
    for text, prediction in zip(texts, batch):
        assert prediction == classifier.predict(text)


def test_analyze_decides_for_the_whole_text_then_for_each_sentence(classifier):
    [spanish] = classifier.analyze([OTHER["es"]])
    assert (spanish.probabilities, spanish.sentences, spanish.language, spanish.label) == ({}, [], "es", None)
    assert spanish.as_dict()["message"] == "This model reads English; this looks like Spanish."
    [mixed] = classifier.analyze(["The package came two days late, the box was wet and the lamp inside was broken. "
                                  f"{OTHER['de']} I am so angry about all of it, and nobody at the shop answers my mails."])
    assert mixed.language == "en" and mixed.label in classifier.labels
    assert [s.language for s in mixed.sentences] == ["en", "de", "en"]
    assert mixed.sentences[1].probabilities == {} and mixed.sentences[1].label is None
    assert mixed.sentences[1].as_dict()["emotion"] is None and mixed.sentences[0].label in classifier.labels


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_any_language_reads_every_text_and_still_names_its_language(tiny_model_dir, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv("EMOTION_ANY_LANGUAGE", "1")
    classifier = Classifier.from_pretrained(tiny_model_dir, any_language=True if how == "argument" else None)
    prediction = classifier.predict(OTHER["es"])
    assert prediction.language == "es" and set(prediction) == set(classifier.labels) and prediction.message is None
    assert np.allclose(list(prediction.values()), sorted(classifier.predict_proba([OTHER["es"]])[0], reverse=True))


def test_score_names_each_row_s_language_and_leaves_other_languages_unscored(tmp_path, classifier):
    src = tmp_path / "mixed.csv"
    pd.DataFrame({"id": [1, 2, 3, 4], "text": ["i feel happy today", OTHER["es"], "", OTHER["ja"]]}).to_csv(src, index=False)
    summary = score_csv(src, tmp_path / "out.csv", classifier, progress=False)
    out = pd.read_csv(tmp_path / "out.csv", dtype={"language": str}, keep_default_na=False)
    assert list(out.columns[:5]) == ["id", "text", "language", "emotion", "confidence"]
    assert out["language"].tolist() == ["en", "es", "", "ja"]
    assert out["emotion"].tolist()[1:] == ["", "", ""] and out["emotion"][0] in classifier.labels
    assert (out.loc[1:, [c for c in out.columns if c.startswith("prob_")] + ["confidence"]] == "").all().all()
    assert summary.languages == {"es": 1, "ja": 1} and summary.skipped == 1
    assert "Scored 1 of 4 rows" in str(summary) and "1 skipped as empty; 2 not in English, left unscored: es 1, ja 1" in str(summary)
    score_csv(tmp_path / "out.csv", tmp_path / "again.csv", classifier, progress=False)  # a scored file scored again
    again = pd.read_csv(tmp_path / "again.csv", dtype={"language": str}, keep_default_na=False)
    assert list(again.columns) == list(out.columns) and again["language"].tolist() == out["language"].tolist()


def test_score_sentences_names_each_sentence_s_language(tmp_path, classifier):
    src = tmp_path / "docs.csv"
    happy = "I am so happy today, the sun is out and all my friends are coming over tonight."
    pd.DataFrame({"text": [f"{happy} {OTHER['de']}", OTHER["fr"]]}).to_csv(src, index=False)
    summary = score_csv(src, tmp_path / "out.csv", classifier, progress=False, sentences=True)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["language"].tolist() == ["en", "de", "fr"] and out["sentence"].tolist() == ["1", "2", ""]
    assert out["emotion"].tolist()[1:] == ["", ""] and summary.languages == {"fr": 1}


def test_the_command_line_names_the_language_and_reads_every_one_when_asked(tmp_path, tiny_model_dir, capsys):
    import json

    assert cli(["predict", "--model", str(tiny_model_dir), "i feel great", OTHER["es"]]) == 0
    english, spanish = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert english["language"] == "en" and english["emotion"] and spanish["emotion"] is None
    assert spanish["message"] == "This model reads English; this looks like Spanish."
    assert cli(["predict", "--model", str(tiny_model_dir), "--any-language", OTHER["es"]]) == 0
    read = json.loads(capsys.readouterr().out)
    assert read["language"] == "es" and read["emotion"] in read["probabilities"]


def test_a_correction_of_a_text_the_model_does_not_read_is_refused(classifier):
    with pytest.raises(EmotionCoreError, match="this looks like German. Corrections are kept for texts the model reads."):
        correction_for(classifier, OTHER["de"], "anger", "api")
