"""score_csv and `python -m emotion_core score`: good files, bad files, big files, nothing half-written."""

import csv
import subprocess
import sys

import pandas as pd
import pytest

from emotion_core import EmotionCoreError
from emotion_core.batch import score_csv
from emotion_core.cli import main as cli

PROB_COLUMNS = [f"prob_{name}" for name in ("sadness", "joy", "love", "anger", "fear", "surprise")]


def read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_scored_csv_keeps_every_column_and_row_order(tmp_path, classifier):
    src = tmp_path / "in.csv"
    src.write_text('id,text,note\n7,i feel great,a\n8,,b\n9,"line one\nline two, with comma",c\n010,   ,d\n')
    summary = score_csv(src, tmp_path / "out.csv", classifier, progress=False)
    out = read(tmp_path / "out.csv")
    assert list(out.columns) == ["id", "text", "note", "language", "emotion", "confidence", *PROB_COLUMNS]
    assert out["id"].tolist() == ["7", "8", "9", "010"]  # kept as written, leading zero included
    assert out["text"][2] == "line one\nline two, with comma"
    assert (summary.rows, summary.skipped) == (4, 2)
    assert out.loc[[1, 3], "emotion"].tolist() == ["", ""] and out.loc[[1, 3], "confidence"].tolist() == ["", ""]
    assert out["language"].tolist() == ["en", "", "en", ""]  # an empty text has none
    scored = out.loc[[0, 2]]
    probs = scored[PROB_COLUMNS].astype(float)
    assert probs.sum(axis=1).round(2).tolist() == [1.0, 1.0]
    assert scored["confidence"].astype(float).tolist() == probs.max(axis=1).tolist()
    for _, row in scored.iterrows():  # the named emotion has the highest probability (ties allowed at 4 decimals)
        assert float(row[f"prob_{row['emotion']}"]) == float(row["confidence"])
    assert sum(summary.label_counts.values()) == 2


def test_scores_match_predict(tmp_path, classifier):
    src = tmp_path / "in.csv"
    texts = ["i am so happy", "this is awful and i am angry", "what a surprise"]
    pd.DataFrame({"text": texts}).to_csv(src, index=False)
    score_csv(src, tmp_path / "out.csv", classifier, progress=False, chunk_rows=2)
    out = read(tmp_path / "out.csv")
    for text, (_, row) in zip(texts, out.iterrows()):
        expected = classifier.predict(text)
        assert row["emotion"] == next(iter(expected))
        assert float(row["prob_joy"]) == pytest.approx(expected["joy"], abs=1e-4)


def test_explain_adds_the_top_words(tmp_path, classifier, monkeypatch):
    from emotion_core import Classifier
    from emotion_core.explain import explain

    monkeypatch.setenv("EMOTION_ENGINE", "torch")  # fp32: int8 may round the tiny model's small score changes away
    classifier = Classifier.from_pretrained(classifier.folder)
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,i feel so happy and glad today\n2,\n3,so lonely at work\n")
    assert cli(["score", str(src), "-o", str(tmp_path / "out.csv"), "--model", str(classifier.folder), "--explain",
                "--quiet"]) == 0
    out = read(tmp_path / "out.csv")
    assert list(out.columns) == ["id", "text", "language", "emotion", "confidence", *PROB_COLUMNS, "top_words"]
    assert out["top_words"][1] == ""
    expected = explain(classifier, "i feel so happy and glad today").top_words(3)
    assert out["top_words"][0] == "; ".join(f"{w} ({s:+.2f})" for w, s in expected) and expected
    # scoring the scored file again without --explain drops the now stale column
    score_csv(tmp_path / "out.csv", tmp_path / "again.csv", classifier, progress=False)
    assert "top_words" not in read(tmp_path / "again.csv").columns


@pytest.mark.parametrize("header,rows,column", [
    ("text,id", ["hello,1"], "text"),
    ("Text,id", ["hello,1"], "Text"),
    ("id,comment,score", ["1,hello there,0.5", "2,more words,3"], "comment"),
    ("id,comment,emotion,confidence,prob_joy", ["1,hello there,joy,0.9,0.9"], "comment"),  # a scored file: its text
])
def test_text_column_is_found(tmp_path, classifier, header, rows, column):
    src = tmp_path / "in.csv"
    src.write_text("\n".join([header, *rows]) + "\n")
    assert score_csv(src, tmp_path / "out.csv", classifier, progress=False).text_column == column


def test_a_column_of_the_persons_own_named_like_an_output_column_is_kept(tmp_path, classifier):
    """`sentence` is SST-2's text column, and `top_words` may be anyone's: only columns this run writes are replaced."""
    src = tmp_path / "sst.csv"
    src.write_text("sentence,label,top_words\ni feel so happy today,1,mine\nso lonely at work,0,also mine\n")
    summary = score_csv(src, tmp_path / "out.csv", classifier, progress=False)
    out = read(tmp_path / "out.csv")
    assert summary.text_column == "sentence" and summary.rows == 2
    assert list(out.columns) == ["sentence", "label", "top_words", "language", "emotion", "confidence", *PROB_COLUMNS]
    assert out["top_words"].tolist() == ["mine", "also mine"]
    score_csv(tmp_path / "out.csv", tmp_path / "again.csv", classifier, progress=False)  # and scored again: still kept
    assert read(tmp_path / "again.csv").columns.tolist() == out.columns.tolist()
    assert read(tmp_path / "again.csv")["top_words"].tolist() == ["mine", "also mine"]
    with pytest.raises(EmotionCoreError, match="has the name of an output column"):  # --sentences writes `sentence`
        score_csv(src, tmp_path / "by-sentence.csv", classifier, progress=False, sentences=True)


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("content,kwargs,message", [
    (b"id,title,body\n1,a,b\n", {},
     "CSV has no column 'text' and no single text column (found: id, title, body). Say which one holds the text "
     "(on the command line: --text-column NAME)."),
    (b"id,text\n1,a\n", {"text_column": "body"}, "CSV has no column 'body' (found: id, text)"),
    ("text\ncaf\xe9 au lait\n".encode("latin-1"), {}, "is not UTF-8 text (it holds the byte 0xe9). Save it as UTF-8"),
    (b"", {}, "is empty: expected a header row"),
    (b"text,id\n", {}, "has a header but no rows to score"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xff\xfe", {}, "not"),
    (b'text\n"unclosed quote\n', {}, "is not a valid CSV file"),
    (b"text\nhello\n", {"encoding": "klingon"}, "Unknown encoding 'klingon'"),
    (b"text\nhello\n", {"encoding": "base64"}, "Unknown encoding 'base64'"),  # a codec of bytes, not of text
    (b"text\nhello\n", {"encoding": "utf-16"}, "cannot be read as utf-16: UTF-16 stream does not start with BOM"),
])
def test_bad_csv_gets_a_clear_error_and_no_output(tmp_path, classifier, content, kwargs, message):
    src = write(tmp_path / "in.csv", content)
    with pytest.raises(EmotionCoreError) as err:
        score_csv(src, tmp_path / "out.csv", classifier, progress=False, **kwargs)
    assert message in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no output, no temporary file


def test_latin1_file_scores_with_encoding_option(tmp_path, classifier):
    src = write(tmp_path / "in.csv", "text\ncaf\xe9 au lait\n".encode("latin-1"))
    score_csv(src, tmp_path / "out.csv", classifier, encoding="latin-1", progress=False)
    assert read(tmp_path / "out.csv")["text"][0] == "café au lait"


def test_utf8_bom_is_accepted(tmp_path, classifier):
    src = write(tmp_path / "in.csv", "\ufefftext\nhello\n".encode("utf-8"))
    assert score_csv(src, tmp_path / "out.csv", classifier, progress=False).text_column == "text"


def test_failure_midway_leaves_old_output_untouched(tmp_path, classifier, monkeypatch):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": [f"text number {i}" for i in range(50)]}).to_csv(src, index=False)
    dst = write(tmp_path / "out.csv", b"previous results\n")
    calls = []

    def fail_on_second_chunk(texts, *args, **kwargs):
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return original(texts, *args, **kwargs)

    original = classifier.predict_proba
    monkeypatch.setattr(classifier, "predict_proba", fail_on_second_chunk)
    with pytest.raises(RuntimeError):
        score_csv(src, dst, classifier, chunk_rows=10, progress=False)
    assert dst.read_bytes() == b"previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.slow
def test_hundred_thousand_rows_stream_in_order(tmp_path, classifier):
    src = tmp_path / "big.csv"
    with open(src, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "text"])
        writer.writerows([i, f"i feel {'happy' if i % 3 else 'sad'} about item {i}" if i % 1000 else ""] for i in range(100_000))
    summary = score_csv(src, tmp_path / "out.csv", classifier, progress=False)
    assert (summary.rows, summary.skipped) == (100_000, 100)
    out = pd.read_csv(tmp_path / "out.csv", usecols=["row", "emotion"])
    assert out["row"].tolist() == list(range(100_000))
    assert out["emotion"].isna().sum() == 100


def test_cli_scores_and_prints_a_summary(tmp_path, tiny_model_dir, capsys):
    src = tmp_path / "in.csv"
    src.write_text("text\ni am happy\n\nhello\n")
    status = cli(["score", str(src), "-o", str(tmp_path / "out.csv"), "--model", str(tiny_model_dir), "--quiet"])
    assert status == 0
    out = capsys.readouterr().out
    assert "Scored 2 of 2 rows" in out and "0 skipped" in out  # a blank line is no row in CSV


def test_cli_bad_input_is_one_line_and_status_1(tmp_path, tiny_model_dir, capsys):
    src = write(tmp_path / "in.csv", b"a,b\n1,2\n")
    assert cli(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_dir), "--text-column", "x"]) == 1
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert last_line == "error: CSV has no column 'x' (found: a, b). Choose one of them."


def test_cli_predict_prints_json(tiny_model_dir, capsys):
    assert cli(["predict", "i feel fine", "--model", str(tiny_model_dir)]) == 0
    assert '"emotion": ' in capsys.readouterr().out


def test_python_dash_m_runs(tmp_path, tiny_model_dir):
    src = tmp_path / "in.csv"
    src.write_text("text\nhello\n")
    result = subprocess.run([sys.executable, "-m", "emotion_core", "score", str(src), "-o", str(tmp_path / "o.csv"),
                             "--model", str(tiny_model_dir)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o.csv").is_file()


def test_scoring_a_scored_file_replaces_its_predictions(tmp_path, classifier):
    src = tmp_path / "in.csv"  # scored by a model with other labels: its whole block is stale
    src.write_text("text,note,emotion,confidence,prob_joy,prob_neutral\ni feel fine,kept,joy,0.9,0.9,0.1\n")
    score_csv(src, tmp_path / "out.csv", classifier, progress=False)
    out = read(tmp_path / "out.csv")
    assert list(out.columns) == ["text", "note", "language", "emotion", "confidence", *PROB_COLUMNS]  # and a language
    assert out["note"][0] == "kept"


def test_a_column_of_the_persons_own_that_score_would_write_over_is_refused(tmp_path, classifier):
    """A gold `emotion` column (not score's block of emotion, confidence, prob_...) would be lost: refused."""
    src = tmp_path / "gold.csv"
    src.write_text("text,emotion,confidence\ni am so happy,joy,high\n")
    with pytest.raises(EmotionCoreError, match="The file has a column 'emotion' of its own, and score writes one of that "
                                               "name: rename it first"):
        score_csv(src, tmp_path / "out.csv", classifier, progress=False)
    assert not (tmp_path / "out.csv").exists()


def test_text_column_named_like_an_output_is_refused(tmp_path, classifier):
    src = write(tmp_path / "in.csv", b"emotion\ni feel fine\n")
    with pytest.raises(EmotionCoreError, match="has the name of an output column"):
        score_csv(src, tmp_path / "out.csv", classifier, progress=False)


def test_row_cap(tmp_path, classifier, monkeypatch):
    """A file over the cap is refused before any row is scored: a server does not hold a slot to find out."""
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["hello"] * 30}).to_csv(src, index=False)
    scored = []
    monkeypatch.setattr(classifier, "predict_proba", lambda texts, *a, **k: scored.append(len(texts)))
    with pytest.raises(EmotionCoreError, match="has more than 20 rows, the limit here"):
        score_csv(src, tmp_path / "out.csv", classifier, progress=False, chunk_rows=10, max_rows=20)
    assert not (tmp_path / "out.csv").exists() and scored == []


def test_a_chunk_of_empty_texts_still_has_a_string_emotion_column(classifier):
    """Ray writes each batch as a Parquet part: an all-empty batch typed `null` made the folder unreadable."""
    from emotion_core.batch import score_frame

    out = score_frame(pd.DataFrame({"text": ["", "  "]}), "text", classifier)
    assert out["emotion"].dtype == "string" and out["emotion"].isna().all()


def test_missing_output_folder_is_one_line(tmp_path, tiny_model_dir, capsys):
    src = write(tmp_path / "in.csv", b"text\nhello\n")
    assert cli(["score", str(src), "-o", str(tmp_path / "no" / "such" / "out.csv"), "--model", str(tiny_model_dir),
                "--quiet"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")
