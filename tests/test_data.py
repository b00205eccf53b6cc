"""Loading labelled text: every format, label handling, and every bad input's message."""

import json
import time

import pytest

from emotion_core import EMOTION_LABELS, EmotionCoreError
from emotion_core.config import DataConfig
from emotion_core.data import load_sources, load_splits, read_file
from tests.helpers import SHARED_EMOTION, toy_rows, write_txt


def write_csv(path, rows, text="text", label="label"):
    import pandas as pd

    pd.DataFrame(rows, columns=[text, label]).to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return path


def test_a_tsv_whose_stray_quote_swallows_rows_is_refused(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('text\tlabel\ngreat day\tjoy\n"so happy today\tjoy\ni am sad\tsadness\nhe said "no" to me\tanger\n')
    with pytest.raises(EmotionCoreError, match=r"train.tsv: the text of row 2 holds a tab, so a '\"' in it began"):
        read_file(path)


def test_a_train_split_of_one_label_is_refused(tmp_path):
    write_txt(tmp_path / "train.txt", [(f"i feel happy {i}", "joy") for i in range(30)])
    with pytest.raises(EmotionCoreError, match="The train split has only the label 'joy': a classifier needs two or more"):
        load_splits(DataConfig(data=[str(tmp_path)]))


def write_jsonl(path, rows, text="text", label="label"):
    path.write_text("".join(json.dumps({text: t, label: y}) + "\n" for t, y in rows))
    return path


@pytest.mark.parametrize("writer,suffix", [(write_txt, ".txt"), (write_csv, ".csv"), (write_csv, ".tsv"), (write_jsonl, ".jsonl")])
def test_every_format_reads_the_same_rows(tmp_path, writer, suffix):
    rows = [("i feel; oddly happy", "joy"), ("so sad, today", "sadness"), ('he said "no"', "anger")]
    texts, labels = read_file(writer(tmp_path / f"train{suffix}", rows))
    assert list(zip(texts, labels)) == rows


def test_folder_with_usual_names_gives_three_splits_in_hub_label_order(toy_dir):
    splits = load_splits(DataConfig(data=str(toy_dir)))
    assert {name: len(ds) for name, ds in splits.items()} == {"train": 300, "validation": 60, "test": 60}
    assert splits["train"].features["label"].names == ["sadness", "joy", "anger"]  # the Hub's order, not a-z
    assert splits["train"][0]["text"] == toy_rows(1, seed=1)[0][0]


def test_explicit_files_and_custom_columns(tmp_path):
    train = write_csv(tmp_path / "a.csv", toy_rows(30, 1), text="body", label="feeling")
    val = write_jsonl(tmp_path / "b.jsonl", toy_rows(9, 2), text="body", label="feeling")
    cfg = DataConfig(train_file=str(train), validation_file=str(val), text_column="body", label_column="feeling")
    splits = load_splits(cfg)
    assert (len(splits["train"]), len(splits["validation"])) == (30, 9)
    assert "test" not in splits


def test_user_label_set_is_kept_and_sorted(tmp_path):
    rows = [row for i in range(10) for row in ((f"great product {i}", "positive"), (f"awful {i}", "negative"),
                                                (f"fine i guess {i}", "neutral"))]
    splits = load_splits(DataConfig(data=str(write_csv(tmp_path / "reviews.csv", rows))))
    assert splits["train"].features["label"].names == ["negative", "neutral", "positive"]
    # one file only: 10% held out, stratified, so every label still appears in validation
    assert len(splits["validation"]) == 3 and set(splits["validation"]["label"]) == {0, 1, 2}


def test_integer_labels_are_named_with_label_names(tmp_path):
    rows = [(text, str(EMOTION_LABELS.index(label))) for text, label in toy_rows(30, 1)]
    write_txt(tmp_path / "train.txt", rows)
    write_txt(tmp_path / "validation.txt", rows[:6])
    splits = load_splits(DataConfig(data=str(tmp_path), label_names="emotion"))
    assert splits["train"].features["label"].names == ["sadness", "joy", "anger"]
    plain = load_splits(DataConfig(data=str(tmp_path)))
    assert plain["train"].features["label"].names == ["0", "1", "3"]


def test_max_train_samples(toy_dir):
    assert len(load_splits(DataConfig(data=str(toy_dir), max_train_samples=25))["train"]) == 25


def test_empty_text_rows_are_dropped(tmp_path):
    write_txt(tmp_path / "train.txt", toy_rows(10, 1) + [("   ", "joy")])
    write_txt(tmp_path / "val.txt", toy_rows(3, 2))
    assert len(load_splits(DataConfig(data=str(tmp_path)))["train"]) == 10


@pytest.mark.parametrize("setup,message", [
    (lambda d: DataConfig(train_file=str(d / "missing.txt")), "File not found: "),
    (lambda d: DataConfig(data=str(d / "nowhere")), "Data not found"),
    (lambda d: DataConfig(data=str(write_csv(d / "t.csv", toy_rows(9, 1), text="body"))),
     "has no column 'text' (found: body, label). Pass --text-column NAME."),
    (lambda d: DataConfig(data=str(d)), "No train file in"),
])
def test_bad_sources_get_clear_messages(tmp_path, setup, message):
    with pytest.raises(EmotionCoreError) as err:
        load_splits(setup(tmp_path))
    assert message in str(err.value)


def test_malformed_line_is_numbered(tmp_path):
    (tmp_path / "train.txt").write_text("fine;joy\nalso fine;sadness\nbroken line without label\n")
    with pytest.raises(EmotionCoreError, match=r"train.txt, line 3: expected 'text;label'"):
        load_splits(DataConfig(data=str(tmp_path)))


def test_malformed_json_line_is_numbered(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "ok", "label": "joy"}\n{"text": "oops"\n')
    with pytest.raises(EmotionCoreError, match=r"line 2: not valid JSON"):
        read_file(path)


def test_label_unseen_in_train_is_refused(tmp_path):
    write_txt(tmp_path / "train.txt", toy_rows(9, 1))
    write_txt(tmp_path / "test.txt", [("i am scared", "fear")])
    write_txt(tmp_path / "val.txt", toy_rows(3, 2))
    with pytest.raises(EmotionCoreError, match=r"test split has labels that train lacks: fear"):
        load_splits(DataConfig(data=str(tmp_path)))


def test_empty_split_is_refused(tmp_path):
    write_txt(tmp_path / "train.txt", toy_rows(9, 1))
    (tmp_path / "val.txt").write_text("\n")
    with pytest.raises(EmotionCoreError, match=r"validation split of .* has no usable rows"):
        load_splits(DataConfig(data=str(tmp_path)))


def test_non_utf8_file_is_refused(tmp_path):
    (tmp_path / "train.txt").write_bytes("caf\xe9 is nice;joy\n".encode("latin-1"))
    with pytest.raises(EmotionCoreError, match="not UTF-8"):
        read_file(tmp_path / "train.txt")


def test_hub_dataset_offline_fails_fast_with_offline_hint():
    start = time.monotonic()
    with pytest.raises(EmotionCoreError) as err:
        load_splits(DataConfig(data="dair-ai/emotion"))
    assert time.monotonic() - start < 10
    assert "Could not load data set 'dair-ai/emotion'" in str(err.value)
    assert "--base-model minilm --data ../shared/data/emotion" in str(err.value)


def test_shared_emotion_data_counts():
    splits, report = load_sources(DataConfig(data=str(SHARED_EMOTION)))
    # 16,000 train rows (the data set's README), less repeats of another train, validation or test text
    duplicates = report["emotion"]["train"]["dropped"]["duplicate"]
    assert 0 < duplicates < 100 and report["emotion"]["train"]["rows"] == 16000 - duplicates
    assert {name: len(ds) for name, ds in splits.items()} == {"train": 16000 - duplicates, "validation": 2000, "test": 2000}
    assert splits["train"].features["label"].names == list(EMOTION_LABELS)
    assert not set(splits["train"]["text"]) & (set(splits["validation"]["text"]) | set(splits["test"]["text"]))


def test_validation_file_needs_a_train_file(tmp_path):
    with pytest.raises(EmotionCoreError, match="go with --train-file"):
        load_splits(DataConfig(validation_file=str(write_txt(tmp_path / "v.txt", toy_rows(3, 1)))))


def test_single_row_label_still_gets_a_validation_split(tmp_path):
    rows = toy_rows(30, 1) + [("i am scared", "fear")]
    splits = load_splits(DataConfig(data=str(write_txt(tmp_path / "only.txt", rows))))
    assert len(splits["train"]) + len(splits["validation"]) == 31


def test_upper_case_extension_and_null_label(tmp_path):
    assert read_file(write_csv(tmp_path / "T.CSV", [("hi", "joy")])) == (["hi"], ["joy"])
    (tmp_path / "n.jsonl").write_text('{"text": "hi", "label": null}\n')
    with pytest.raises(EmotionCoreError, match="line 1: the label is null"):
        read_file(tmp_path / "n.jsonl")
