"""The tokenizer read with `tokenizers` alone gives transformers' ids, and answering loads neither torch nor transformers."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from emotion_core import EmotionCoreError
from emotion_core.config import BUNDLED_MODEL
from emotion_core.tokens import FolderTokenizer
from tests.helpers import ROOT

TEXTS = ["i feel happy", "I AM SO ANGRY!!! at them, really.", "caf\u00e9 na\u00efve r\u00e9sum\u00e9", "so angry \U0001F621",
         "", "   ", "words " * 300, "tab\tand\nnew line", "[CLS] inside [SEP] text", "\u4e2d\u6587 mixed in"]


@pytest.mark.parametrize("folder", ["tiny", "bundled"])
def test_same_ids_as_transformers(folder, tiny_model_dir):
    path = tiny_model_dir if folder == "tiny" else BUNDLED_MODEL
    ours, theirs = FolderTokenizer(path), AutoTokenizer.from_pretrained(path)
    assert ours.ids(TEXTS) == theirs(TEXTS)["input_ids"]  # never truncated, though tokenizer.json asks for it
    assert ours.ids(TEXTS, special_tokens=False) == theirs(TEXTS, add_special_tokens=False)["input_ids"]
    words = ["Heartbroken,", "but", "fine", "\U0001F621"]
    encoded = theirs(words, is_split_into_words=True)
    assert ours.words(words) == (encoded["input_ids"], encoded.word_ids())
    assert (ours.pad_token_id, ours.mask_token_id) == (theirs.pad_token_id, theirs.mask_token_id)
    assert ours.special_tokens == theirs.num_special_tokens_to_add() and ours.closing_tokens() == 1
    assert ours.model_max_length == theirs.model_max_length


def test_missing_or_damaged_tokenizer_is_one_clear_error(tmp_path):
    with pytest.raises(EmotionCoreError, match="has no tokenizer.json"):
        FolderTokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(EmotionCoreError, match="tokenizer.json could not be read"):
        FolderTokenizer(tmp_path)


def test_answering_with_onnx_imports_neither_torch_nor_transformers():
    """What a start costs: the default engine answers with tokenizers and onnxruntime alone."""
    code = ("import sys, json; from emotion_core import Classifier; c = Classifier.from_pretrained(); "
            "answer = c.predict('i feel great'); "
            "print(json.dumps([c.engine.name, next(iter(answer)), [m for m in ('torch', 'transformers') if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == ["onnx-int8", "joy", []]


def test_special_tokens_named_only_in_the_older_map_file_are_found(tmp_path, tiny_model_dir):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    settings = json.loads((tmp_path / "tokenizer_config.json").read_text())
    tokens = {key: settings.pop(key) for key in ("pad_token", "mask_token")}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(settings))
    assert FolderTokenizer(tmp_path).mask_token_id is None
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(tokens))
    found, expected = FolderTokenizer(tmp_path), FolderTokenizer(tiny_model_dir)
    assert (found.pad_token_id, found.mask_token_id) == (expected.pad_token_id, expected.mask_token_id) != (None, None)


@pytest.mark.parametrize("setting,threads", [("1", 1), ("3", 3), ("", len(os.sched_getaffinity(0))),
                                             ("many", len(os.sched_getaffinity(0)))])
def test_without_torch_the_engines_take_their_threads_from_omp_num_threads(setting, threads):
    """Ray and Spark give each worker its share of the cores through OMP_NUM_THREADS."""
    code = "import sys; from emotion_core.engines import cpu_threads; assert 'torch' not in sys.modules; print(cpu_threads())"
    env = {**os.environ, "OMP_NUM_THREADS": setting}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout) == threads
