"""Template augmentation: deterministic, distinct, known labels, every family, and a file `read_file` reads back."""

import pytest

from emotion_core import EmotionCoreError
from emotion_core.augment import AUGMENTED, CONTRAST, capacity, fill, generate, write_augmented
from emotion_core.cli import main as cli
from emotion_core.data import read_file
from emotion_core.labels import KNOWN_LABELS


def test_generate_is_the_same_for_a_seed_and_differs_between_seeds():
    assert generate(200, seed=1) == generate(200, seed=1)
    assert generate(200, seed=1) != generate(200, seed=2)


def test_texts_are_distinct_well_formed_and_labelled_with_known_labels():
    pairs = generate(3000)
    texts = [text for text, _ in pairs]
    assert len(pairs) == 3000 and len(set(texts)) == 3000
    assert {label for _, label in pairs} <= set(KNOWN_LABELS)
    assert not [text for text in texts if text.endswith(";") or "{" in text or "}" in text or not text.strip()]


def test_every_family_is_represented():
    texts = {text.lower().rstrip(".!") for text, _ in generate(900)}
    for name, templates in {**AUGMENTED, **CONTRAST}.items():
        family = {text.lower().rstrip(".!") for template in templates for text, _ in fill(*template)}
        assert texts & family, f"no text from the family {name!r}"
    assert {"sadness", "joy", "neutral", "anger", "love"} <= {label for _, label in generate(900)}


def test_the_same_fillers_appear_both_turned_around_and_plain():
    pairs = generate(3000)
    assert {label for text, label in pairs if text.lower().startswith("oh great,")} >= {"anger", "joy"}
    assert {label for text, label in pairs if text.lower().startswith("i just love")} == {"anger", "joy"}


def test_write_augmented_writes_a_file_read_file_reads_back(tmp_path):
    path = write_augmented(tmp_path / "augmented" / "train.txt", 500, seed=3)
    texts, labels = read_file(path)
    assert list(zip(texts, labels)) == generate(500, seed=3)
    assert [p.name for p in path.parent.iterdir()] == ["train.txt"]  # no partial file left beside it


def test_asking_for_more_than_the_templates_make_names_the_maximum():
    most = capacity()
    assert len(generate(most)) == most
    with pytest.raises(EmotionCoreError, match=f"at most {most:,} distinct"):
        generate(most + 1)


def test_the_command_writes_a_file_a_mix_file_can_name(tmp_path, capsys):
    path = tmp_path / "augmented" / "train.txt"
    assert cli(["augment", str(path), "--rows", "40", "--seed", "5"]) in (0, None)
    assert list(zip(*read_file(path))) == generate(40, seed=5) and "40 rows" in capsys.readouterr().out
    assert cli(["augment", str(tmp_path / "too-many.txt"), "--rows", str(capacity() + 1)]) == 1
    assert not (tmp_path / "too-many.txt").exists()
