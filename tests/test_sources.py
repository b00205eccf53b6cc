"""Several sources in one run: formats, label maps, drop counts, normalisation, per-source metrics."""

import json

import pytest

from emotion_core import Classifier, EmotionCoreError, train
from emotion_core.config import DataConfig
from emotion_core.data import load_sources
from emotion_core.normalize import normalize, parse_steps
from tests.helpers import toy_rows, write_txt

GOEMOTIONS_NAMES = ["admiration", "anger", "joy", "neutral", "sadness"]  # a short emotions.txt: ids index it


def write_goemotions(folder, train_rows, dev_rows):
    """A GoEmotions-format folder: emotions.txt and headerless TSVs of text, label ids, comment id."""
    folder.mkdir()
    (folder / "emotions.txt").write_text("\n".join(GOEMOTIONS_NAMES) + "\n")
    for name, rows in (("train.tsv", train_rows), ("dev.tsv", dev_rows)):
        ids = lambda labels: ",".join(str(GOEMOTIONS_NAMES.index(x)) for x in labels.split("+"))  # noqa: E731
        (folder / name).write_text("".join(f"{text}\t{ids(labels)}\tid{i}\n" for i, (text, labels) in enumerate(rows)))
    return folder


@pytest.fixture
def two_sources(tmp_path):
    """A `text;label` folder (toy task) and a GoEmotions-style folder with every kind of row to drop."""
    toy = tmp_path / "toy"
    toy.mkdir()
    write_txt(toy / "train.txt", toy_rows(60, seed=1))
    write_txt(toy / "val.txt", toy_rows(12, seed=2))
    reddit_train = [
        ("So HAPPY for [NAME]!! https://redd.it/x", "joy"),
        ("this is just sad, u/somebody", "sadness"),
        ("I am furious about this", "anger"),
        ("Thanks, great post", "admiration"),       # joy under ekman-love, unmapped under six
        ("ok", "neutral"),                          # unmapped under both
        ("sad and angry at once", "sadness+anger"),  # multi-label
        ("   ", "joy"),                             # empty text
        ("so happy for [NAME]!! https://redd.it/x", "joy"),  # a duplicate once normalised
    ]
    reddit_dev = [("Such a sad day", "sadness"), ("Wow, amazing work", "admiration"), ("I'm angry", "anger+sadness")]
    reddit = write_goemotions(tmp_path / "goemotions", reddit_train, reddit_dev)
    return toy, reddit


def test_two_formats_mix_with_counts_per_source(two_sources):
    toy, reddit = two_sources
    splits, report = load_sources(DataConfig(data=[str(toy), str(reddit)]))
    assert report["goemotions"]["train"] == {"rows": 3, "dropped": {"unmapped label": 2, "multi-label": 1,
                                                                    "empty text": 1, "duplicate": 1}}
    assert report["goemotions"]["validation"] == {"rows": 1, "dropped": {"unmapped label": 1, "multi-label": 1}}
    assert report["toy"]["train"]["rows"] == 60 and report["toy"]["validation"]["rows"] == 12
    assert len(splits["train"]) == 63 and len(splits["validation"]) == 13
    assert splits["train"]["source"].count("goemotions") == 3 and splits["validation"]["source"][-1] == "goemotions"
    assert splits["train"].features["label"].names == ["sadness", "joy", "anger"]
    assert "goemotions train: 3 rows (dropped 2 unmapped label, 1 multi-label, 1 empty text, 1 duplicate)" in report.lines()


def test_broader_grouping_widens_train_but_not_validation(two_sources):
    toy, reddit = two_sources
    splits, report = load_sources(DataConfig(data=[str(toy), str(reddit)], label_map="ekman-love"))
    assert report["goemotions"]["train"]["rows"] == 4  # admiration -> joy joins
    assert report["goemotions"]["validation"]["rows"] == 1  # dev stays single-label six-emotion rows


def test_mix_file_with_its_own_columns_and_label_map(tmp_path, two_sources):
    toy, _ = two_sources
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("body,feeling\nwhat a lovely day,happy\nthis makes me mad,mad\nmeh,meh\nsunny and bright,happy\n")
    (tmp_path / "map.json").write_text(json.dumps({"happy": "joy", "mad": "anger"}))
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [
        {"data": str(toy), "name": "toy"},
        {"data": str(reviews), "name": "reviews", "text_column": "body", "label_column": "feeling",
         "label_map": str(tmp_path / "map.json")},
    ]}))
    splits, report = load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    # a source without validation gives a tenth of its rows (at least one) to validation
    assert report["reviews"]["train"] == {"rows": 2, "dropped": {"unmapped label": 1, "moved to validation": 1}}
    assert report["reviews"]["validation"] == {"rows": 1, "dropped": {}}
    rows = [(t, splits["train"].features["label"].int2str(y)) for t, y, s in
            zip(splits["train"]["text"], splits["train"]["label"], splits["train"]["source"]) if s == "reviews"]
    held = [t for t, s in zip(splits["validation"]["text"], splits["validation"]["source"]) if s == "reviews"]
    assert len(rows) == 2 and len(held) == 1
    assert ("this makes me mad", "anger") in rows or held == ["this makes me mad"]


@pytest.mark.parametrize("content,message", [
    ('{"sources": [{"data": "x", "colour": "red"}]}', "unknown key 'colour'"),
    ('[1, 2]', "must be JSON like"),
    ('{"sources": [{"data": "x", "format": "xml"}]}', "Unknown source format 'xml'"),
])
def test_bad_mix_file_is_refused(tmp_path, content, message):
    (tmp_path / "mix.json").write_text(content)
    with pytest.raises(EmotionCoreError, match=message):
        load_sources(DataConfig(mix=str(tmp_path / "mix.json")))


def test_sources_need_distinct_names(two_sources):
    toy, _ = two_sources
    with pytest.raises(EmotionCoreError, match="share the name 'toy'"):
        load_sources(DataConfig(data=[str(toy), str(toy)]))


def test_normalisation_steps():
    steps = parse_steps("default")
    text = "LOL @Bob_99 see https://example.com/a?b=1 and u/some-one, [NAME]   is GREAT. mail a@b.com"
    assert normalize(text, steps) == "lol @user see http and @user, someone is great. mail a@b.com"
    assert normalize(text, parse_steps("none")) == text
    assert parse_steps("lowercase,urls") == ("urls", "lowercase")  # always applied in one order
    with pytest.raises(EmotionCoreError, match="Unknown normalisation step 'emojis'"):
        parse_steps("emojis")


def test_training_and_inference_normalise_alike_and_report_each_source(tmp_path, tiny_base_dir, two_sources):
    toy, reddit = two_sources
    out = tmp_path / "mixed"
    metrics = train.main(["--base-model", str(tiny_base_dir), "--data", str(toy), str(reddit), "--output-dir", str(out),
                          "--max-steps", "2", "--max-length", "32"])
    assert set(metrics["sources"]) == {"toy", "goemotions"}
    assert metrics["sources"]["goemotions"]["validation"]["n"] == 1 and metrics["sources"]["toy"]["validation"]["n"] == 12
    assert metrics["data"]["goemotions"]["train"]["dropped"]["multi-label"] == 1
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["sources"] == json.loads(json.dumps(metrics["sources"]))
    card = (out / "README.md").read_text()
    assert "| goemotions | validation | 1 |" in card and "goemotions train: 3 rows (dropped" in card
    run_config = json.loads((out / "run_config.json").read_text())
    assert [s["name"] for s in run_config["sources"]] == ["toy", "goemotions"]

    classifier = Classifier.from_pretrained(out, engine="torch")
    assert classifier.normalization == parse_steps("default")
    raw, normalised = "So HAPPY for [NAME]!! https://redd.it/x @Someone", "so happy for someone!! http @user"
    assert (classifier.predict_proba([raw]) == classifier.predict_proba([normalised])).all()
    # what training fed the model is the same normalised text
    splits, _ = load_sources(DataConfig(data=[str(toy), str(reddit)]))
    assert "so happy for someone!! http" in splits["train"]["text"]


def test_weights_repeat_or_subsample_a_source(tmp_path, two_sources):
    toy, reddit = two_sources
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [
        {"data": str(toy), "weight": 0.5}, {"data": str(reddit), "weight": 2}]}))
    splits, report = load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    sources = splits["train"]["source"]
    assert sources.count("toy") == 30 and sources.count("goemotions") == 6
    assert report["toy"]["train"]["per_epoch"] == 30 and "goemotions train: 3 rows (dropped" in report.lines()[2]
    assert report.lines()[2].endswith(", 6 seen per epoch")
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [{"data": str(toy), "weight": 0}]}))
    with pytest.raises(EmotionCoreError, match="weight must be a positive number"):
        load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    (tmp_path / "mix.json").write_text(json.dumps({"sources": []}))
    with pytest.raises(EmotionCoreError, match="mix.json lists no source"):
        load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    (tmp_path / "one.txt").write_text("i am so happy;joy\n")
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [{"data": str(toy)}, {"train_file": str(tmp_path / "one.txt")}]}))
    with pytest.raises(EmotionCoreError, match="one has 1 train row and no validation split, too few to hold one out"):
        load_sources(DataConfig(mix=str(tmp_path / "mix.json")))


def test_per_source_metrics_belong_to_that_source(tmp_path, tiny_base_dir):
    """Short random rows listed before long learnable ones: each source's figures must be its own rows' figures.

    (Evaluation grouped by length would return the long rows first and pair them with the short source.)
    """
    import random

    rng = random.Random(0)
    long_rows = lambda n, seed: [(f"{text} and {text}", label)  # noqa: E731 (long, still cued by one word)
                                 for text, label in toy_rows(n, seed)]
    short_rows = lambda n: [(rng.choice(["hm", "ok", "so", "now", "the"]), rng.choice(["sadness", "joy", "anger"]))  # noqa: E731
                            for _ in range(n)]
    cued, noise = tmp_path / "cued", tmp_path / "noise"
    for folder, train_rows, val_rows in ((cued, long_rows(240, 1), long_rows(30, 2)), (noise, short_rows(120), short_rows(30))):
        folder.mkdir()
        write_txt(folder / "train.txt", train_rows)
        write_txt(folder / "val.txt", val_rows)
    out = tmp_path / "model"
    metrics = train.main(["--base-model", str(tiny_base_dir), "--data", str(noise), str(cued), "--output-dir", str(out),
                          "--epochs", "15", "--learning-rate", "3e-3", "--batch-size", "16", "--warmup-ratio", "0",
                          "--max-length", "32", "--no-export"])
    classifier = Classifier.from_pretrained(out, engine="torch")
    splits, _ = load_sources(DataConfig(data=[str(noise), str(cued)], normalize="none"))
    validation = splits["validation"]
    for name in ("cued", "noise"):
        rows = [i for i, source in enumerate(validation["source"]) if source == name]
        truth = [validation.features["label"].int2str(validation["label"][i]) for i in rows]
        probs = classifier.predict_proba([validation["text"][i] for i in rows])
        accuracy = sum(classifier.labels[p.argmax()] == t for p, t in zip(probs, truth)) / len(rows)
        assert metrics["sources"][name]["validation"]["accuracy"] == pytest.approx(accuracy, abs=0.04), name
    assert metrics["sources"]["cued"]["validation"]["accuracy"] > 0.9  # the learnable source is learned


def test_neutral_maps_keep_neutral_and_measure_folded_rows_apart(tmp_path, two_sources):
    toy, reddit = two_sources
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [
        {"data": str(toy)}, {"data": str(reddit), "label_map": "ekman-love+neutral"}]}))
    splits, report = load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    assert splits["train"].features["label"].names == ["sadness", "joy", "anger", "neutral"]  # the Hub's order, then neutral
    names = splits["train"].features["label"].int2str
    goemotions_train = [names(label) for label, source in zip(splits["train"]["label"], splits["train"]["source"])
                        if source == "goemotions"]
    assert sorted(goemotions_train) == ["anger", "joy", "joy", "neutral", "sadness"]  # admiration folded into joy
    # validation keeps the labels that are model labels themselves; the folded ones are a split of their own
    assert report["goemotions"]["validation"]["rows"] == 1
    assert [names(x) for x in splits["folded"]["label"]] == ["joy"] and splits["folded"]["text"] == ["wow, amazing work"]
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [
        {"data": str(toy)}, {"data": str(reddit), "label_map": "six+neutral"}]}))
    splits, _ = load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    assert "folded" not in splits and "neutral" in splits["train"].features["label"].names
    (tmp_path / "map.json").write_text(json.dumps({"sadness": "sadness", "joy": "joy", "anger": "anger"}))
    for label_map in ("six", str(tmp_path / "map.json")):  # another data set, or a map of one's own: nothing folded
        (tmp_path / "mix.json").write_text(json.dumps({"sources": [{"data": str(toy), "label_map": label_map}]}))
        splits, _ = load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
        assert set(splits) == {"train", "validation"}, label_map


def test_label_weights_repeat_or_subsample_one_label(tmp_path, two_sources):
    toy, reddit = two_sources
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [
        {"data": str(toy), "label_weights": {"joy": 2, "anger": 0.5}}, {"data": str(reddit)}]}))
    splits, report = load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    counts = {label: 0 for label in ("sadness", "joy", "anger")}
    for label, source in zip(splits["train"]["label"], splits["train"]["source"]):
        if source == "toy":
            counts[splits["train"].features["label"].int2str(label)] += 1
    assert counts == {"sadness": 20, "joy": 40, "anger": 10} and report["toy"]["train"]["per_epoch"] == 70
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [{"data": str(toy), "label_weights": {"neutral": 2}}]}))
    with pytest.raises(EmotionCoreError, match="label_weights names neutral, which no train row has"):
        load_sources(DataConfig(mix=str(tmp_path / "mix.json")))
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [{"data": str(toy), "label_weights": {"joy": -1}}]}))
    with pytest.raises(EmotionCoreError, match="label_weights must map labels to positive numbers"):
        load_sources(DataConfig(mix=str(tmp_path / "mix.json")))


def write_tweeteval(folder, train_rows, val_rows):
    """A TweetEval-format folder: mapping.txt, and each split's texts and label ids in two files, line by line."""
    folder.mkdir()
    names = ["anger", "joy", "optimism", "sadness"]
    (folder / "mapping.txt").write_text("".join(f"{i}\t{name}\n" for i, name in enumerate(names)))
    for split, rows in (("train", train_rows), ("val", val_rows)):
        (folder / f"{split}_text.txt").write_text("".join(f"{text}\n" for text, _ in rows))
        (folder / f"{split}_labels.txt").write_text("".join(f"{names.index(label)}\n" for _, label in rows))
    return folder


TWEETS = [("so done with this traffic #fuming", "anger"), ("best day ever!!", "joy"),
          ("tomorrow will be better, I know it", "optimism"), ("miss you grandma", "sadness")]


@pytest.mark.parametrize("label_map, train_labels", [(None, ["anger", "joy", "joy", "sadness"]),
                                                     ("no-optimism", ["anger", "joy", "sadness"])])
def test_tweeteval_maps_optimism_and_measures_it_apart(tmp_path, label_map, train_labels):
    folder = write_tweeteval(tmp_path / "tweeteval", TWEETS, [(text + " again", label) for text, label in TWEETS])
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"sources": [{"data": str(folder), "label_map": label_map}]}))
    splits, report = load_sources(DataConfig(mix=str(mix)))
    names = splits["train"].features["label"].names
    assert sorted(names[i] for i in splits["train"]["label"]) == train_labels
    assert sorted(names[i] for i in splits["validation"]["label"]) == ["anger", "joy", "sadness"]  # the six's own labels
    folded = [] if label_map else ["tomorrow will be better, i know it again"]  # optimism as joy is measured apart
    assert splits.get("folded", {"text": []})["text"] == folded


@pytest.mark.parametrize("labels, message", [("0\n1\n", "has 4 lines but train_labels.txt 2"),
                                             ("0\n1\n7\n3\n", "label id '7' is not in mapping.txt")])
def test_broken_tweeteval_files_are_refused(tmp_path, labels, message):
    folder = write_tweeteval(tmp_path / "tweeteval", TWEETS, TWEETS)
    (folder / "train_labels.txt").write_text(labels)
    with pytest.raises(EmotionCoreError, match=message):
        load_sources(DataConfig(data=[str(folder)]))


@pytest.mark.parametrize("broken, message", [("train_labels.txt", "has no train_labels.txt beside it"),
                                             ("mapping.txt", "expected one 'id<TAB>name' per line")])
def test_a_missing_labels_file_or_a_broken_mapping_is_refused(tmp_path, broken, message):
    folder = write_tweeteval(tmp_path / "tweeteval", TWEETS, TWEETS)
    if broken == "mapping.txt":
        (folder / broken).write_text("0 anger\n1\tjoy\n")
    else:
        (folder / broken).unlink()
    with pytest.raises(EmotionCoreError, match=message):
        load_sources(DataConfig(data=[str(folder)]))


def test_a_tweeteval_source_without_mapping_txt_is_refused(tmp_path):
    folder = write_tweeteval(tmp_path / "tweeteval", TWEETS, TWEETS)
    (folder / "mapping.txt").unlink()
    mix = tmp_path / "mix.json"  # the format named, since without mapping.txt the folder is not recognised as TweetEval
    mix.write_text(json.dumps({"sources": [{"name": "tweets", "data": str(folder), "format": "tweeteval"}]}))
    with pytest.raises(EmotionCoreError, match="has no mapping.txt: TweetEval names its label ids there"):
        load_sources(DataConfig(mix=str(mix)))


def test_a_train_only_source_is_trained_on_and_never_measured(tmp_path, two_sources):
    toy, _ = two_sources
    extra = write_txt(tmp_path / "augmented.txt", [("i am not happy about this at all", "sadness"),
                                                    ("oh great, a flat tyre", "anger")])
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"sources": [{"data": str(toy)}, {"name": "augmented", "data": str(extra), "train_only": True}]}))
    splits, report = load_sources(DataConfig(mix=str(mix)))
    assert splits["train"]["source"].count("augmented") == 2
    assert "augmented" not in splits["validation"]["source"] and "validation" not in report["augmented"]
    mix.write_text(json.dumps({"sources": [{"name": "augmented", "data": str(extra), "train_only": True}]}))
    with pytest.raises(EmotionCoreError, match="Every source is train_only"):
        load_sources(DataConfig(mix=str(mix)))
