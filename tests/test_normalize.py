"""Text normalisation: social-media writing turned into words, the same at training and inference."""

import pytest

from emotion_core import Classifier, train
from emotion_core.config import DataConfig
from emotion_core.data import load_sources
from emotion_core.normalize import normalize, normalize_words, parse_steps
from tests.helpers import toy_rows, write_txt

DEFAULT = parse_steps("default")


@pytest.mark.parametrize("text,expected", [
    ("so angry 😡", "so angry enraged face"),
    ("so angry 😡😡😡 right now", "so angry enraged face right now"),  # a run of one emoji counts once
    ("👍🏽 nice", "thumbs up nice"),                                     # skin tone dropped
    ("I ❤️ this!!", "i red heart this!!"),                               # presentation selector dropped
    ("😂 lol 😂", "face with tears of joy lol face with tears of joy"),
    ("so happy😀", "so happy grinning face"),
    ("caf\u00e9 na\u00efve", "caf\u00e9 na\u00efve"),                    # accents are not emoji
])
def test_emoji_become_their_names(text, expected):
    assert normalize(text, DEFAULT) == expected


@pytest.mark.parametrize("text", ["whatever 😢 😢 😢", "sad😢 😢 ok", "😢 😢sad 😢", "👍🏽 👍 fine", "😂 lol 😂", "🏽 so 😡😡 😡",
                                  "so 😡 \ufe0f 😡", "#sofrustratedsad🏽@bobx😢 hi"])
def test_words_normalised_one_by_one_read_as_the_whole_text(text):
    """Explanations leave words out one at a time: each word must read as it does in the whole text, where a run
    of one emoji counts once even across spaces."""
    words = [word for word in normalize_words(text.split(), DEFAULT) if word]
    assert " ".join(" ".join(words).split()) == normalize(text, DEFAULT)


@pytest.mark.parametrize("text,expected", [
    ("#sofrustrated again", "so frustrated again"),
    ("#BlackLivesMatter", "black lives matter"),            # split at the capitals
    ("#worstdayever", "worst day ever"),
    ("#blessed", "blessed"),
    ("#1 fan, issue #42", "#1 fan, issue #42"),             # numbers are not hashtags
    ("it&#39;s fine", "it&#39;s fine"),                     # nor HTML entities
])
def test_hashtags_become_words(text, expected):
    assert normalize(text, DEFAULT) == expected


@pytest.mark.parametrize("text,expected", [
    ("sooooo good", "so good"),
    ("gooood", "good"),
    ("yesssss", "yes"),
    ("sleeeeep", "sleep"),
    ("I looooove it", "i love it"),
    ("coffee and balloons", "coffee and balloons"),  # two letters are not an elongation
    ("qxxxxjjjj", "qxxjj"),                           # no known spelling: two letters each
    ("noooooo whyyyy", "no why"),
])
def test_elongations_are_shortened(text, expected):
    assert normalize(text, DEFAULT) == expected


@pytest.mark.parametrize("text,expected", [
    ("Oooh yes", "oh yes"),                       # a capital starts the run: shortened as "oooh" is
    ("U/scottgal - thank you!", "@user - thank you!"),
    ("thanks u/[NAME]!", "thanks u/someone!"),    # a name masked after the mentions step stays one
    ("SOOOO ANGRY 😡 😡 #SoFrustrated @Bob www.x.io [NAME]", "so angry enraged face so frustrated @user http someone"),
])
def test_normalising_twice_changes_nothing(text, expected):
    """Figures redone later score texts the run normalised (evaluation.eval_data): a second pass must not move them."""
    once = normalize(text, DEFAULT)
    assert once == expected and normalize(once, DEFAULT) == once


def test_steps_can_be_chosen_and_older_lists_keep_their_meaning():
    text = "SO angry 😡 #sofrustrated sooooo"
    assert normalize(text, parse_steps("lowercase,spaces")) == "so angry 😡 #sofrustrated sooooo"
    assert normalize(text, parse_steps("emoji")) == "SO angry  enraged face  #sofrustrated sooooo"
    assert parse_steps("spaces,emoji,hashtags") == ("emoji", "hashtags", "spaces")


def test_training_and_inference_normalise_social_text_alike(tmp_path, tiny_base_dir):
    """What training fed the model and what the classifier feeds it are the same string."""
    data = tmp_path / "social"
    data.mkdir()
    social = [("so angry 😡😡 #sofrustrated", "anger"), ("sooooo happy 😀 #bestdayever", "joy"), ("#sad and lonely 😢", "sadness")]
    write_txt(data / "train.txt", toy_rows(60, seed=1) + social)
    write_txt(data / "val.txt", toy_rows(12, seed=2))
    out = tmp_path / "model"
    train.main(["--base-model", str(tiny_base_dir), "--data", str(data), "--output-dir", str(out), "--max-steps", "2",
                "--max-length", "32", "--no-export"])
    classifier = Classifier.from_pretrained(out, engine="torch")
    assert classifier.normalization == DEFAULT
    trained_on = set(load_sources(DataConfig(data=[str(data)]))[0]["train"]["text"])
    for text, _ in social:
        seen = normalize(text, classifier.normalization)
        assert seen in trained_on
        assert classifier.encode([text]) == classifier.encode([seen])  # and the classifier reads the raw text so
    assert "so angry enraged face so frustrated" in trained_on and "so happy grinning face best day ever" in trained_on
