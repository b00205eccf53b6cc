"""Shared fixtures: a tiny random DistilBERT, a WordPiece tokenizer trained here, and toy data.

Nothing here touches the network: the environment below keeps the Hub libraries offline.
"""

import os

os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False",
                  TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1")
os.environ.pop("EMOTION_MODEL", None)
os.environ.pop("EMOTION_FEEDBACK", None)

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertModel,
    PreTrainedTokenizerFast,
)

from tests.helpers import neutral_toy_rows, toy_rows, write_txt


@pytest.fixture(scope="session", autouse=True)
def feedback_db(tmp_path_factory) -> Path:
    """Where every test's app and command keep corrections: a file of the run's own, never the user's."""
    path = tmp_path_factory.mktemp("feedback") / "feedback.db"
    os.environ["EMOTION_FEEDBACK_DB"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_neutral_model(tmp_path_factory, tiny_base_dir) -> Path:
    """The tiny model trained on the toy task with neutral (sadness, joy, anger, neutral), exported and calibrated."""
    from emotion_core import train

    data = tmp_path_factory.mktemp("neutral-toy")
    for name, n, seed in (("train.txt", 400, 1), ("val.txt", 80, 2), ("test.txt", 80, 3)):
        write_txt(data / name, neutral_toy_rows(n, seed))
    out = tmp_path_factory.mktemp("neutral-run") / "tiny-neutral"
    train.main(["--base-model", str(tiny_base_dir), "--data", str(data), "--output-dir", str(out), "--epochs", "20",
                "--batch-size", "16", "--learning-rate", "3e-3", "--warmup-ratio", "0", "--max-length", "32"])
    return out


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> Path:
    """A folder with train.txt / val.txt / test.txt of the toy task."""
    folder = tmp_path_factory.mktemp("toy")
    write_txt(folder / "train.txt", toy_rows(300, seed=1))
    write_txt(folder / "val.txt", toy_rows(60, seed=2))
    write_txt(folder / "test.txt", toy_rows(60, seed=3))
    return folder


def build_tokenizer(corpus: list[str]) -> PreTrainedTokenizerFast:
    """A lower-casing WordPiece tokenizer with BERT's special tokens, every word of `corpus` whole, and the
    letters and punctuation marks alone for other words: the same ids on every run (a trained
    vocabulary's ids are not)."""
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({word for text in corpus for word in text.lower().split()})
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()") | {c for w in words for c in w})
    vocab = special + words + [c for c in chars if c not in words] + [f"##{c}" for c in chars]
    tok = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)


def tiny_config(vocab_size: int, **labels) -> DistilBertConfig:
    """DistilBERT with one layer of width 32: seconds to train, same code paths as the real one."""
    return DistilBertConfig(vocab_size=vocab_size, n_layers=1, n_heads=2, dim=32, hidden_dim=64,
                            max_position_embeddings=64, **labels)


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory) -> Path:
    """A tiny pretrained-style encoder folder (no head) to fine-tune, like distilbert-base-uncased."""
    folder = tmp_path_factory.mktemp("tiny-base")
    corpus = [text for text, _ in toy_rows(300, seed=0)] + ["the quick brown fox jumps over the lazy dog"] * 5
    tokenizer = build_tokenizer(corpus)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)  # the same random encoder every run: a training test on it passes every time or never
    DistilBertModel(tiny_config(len(tokenizer))).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_base_dir) -> Path:
    """A classification model folder with the six emotion labels (random weights)."""
    from emotion_core import EMOTION_LABELS

    folder = tmp_path_factory.mktemp("tiny-model")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tiny_base_dir)
    tokenizer.save_pretrained(folder)
    config = tiny_config(len(tokenizer), id2label=dict(enumerate(EMOTION_LABELS)),
                         label2id={name: i for i, name in enumerate(EMOTION_LABELS)})
    torch.manual_seed(0)  # the same random weights every run: a test on them fails every time or never
    DistilBertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def classifier(tiny_model_dir):
    """A Classifier on the tiny model."""
    from emotion_core import Classifier

    return Classifier.from_pretrained(tiny_model_dir)
