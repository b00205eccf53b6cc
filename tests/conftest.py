"""Shared fixtures: a tiny random DistilBERT, a WordPiece tokenizer trained here, and toy data.

Nothing here touches the network: the environment below keeps the Hub libraries offline.
"""

import os

os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False",
                  TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1")
os.environ.pop("EMOTION_MODEL", None)

import random
import socket
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

SHARED_EMOTION = Path(__file__).resolve().parents[2] / "shared" / "data" / "emotion"

# A separable toy task: each label has its own cue words; filler words are shared.
CUES = {
    "sadness": ["sad", "lonely", "gloomy", "miserable", "heartbroken"],
    "joy": ["happy", "delighted", "cheerful", "glad", "thrilled"],
    "anger": ["furious", "angry", "annoyed", "irritated", "outraged"],
}
FILLER = ["i", "feel", "today", "really", "so", "at", "work", "the", "weather", "and", "my", "friends", "very", "now"]
NEUTRAL_CUES = ["quick", "brown", "fox", "jumps", "lazy", "dog"]  # words the tiny tokenizer knows, no label's own


def toy_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (text, label) pairs where one cue word gives the label away."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(CUES)[i % len(CUES)]
        words = rng.sample(FILLER, 5) + [rng.choice(CUES[label])]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def bundled_engine() -> str:
    """The engine `auto` picks for the bundled model: its int8 export if it has one, else its fp32 export
    (split with bf16 where the CPU has native bf16)."""
    from emotion_core.config import BUNDLED_MODEL
    from emotion_core.engines import cpu_has_bf16
    from emotion_core.model_folder import INT8_ONNX

    if (BUNDLED_MODEL / INT8_ONNX).is_file():
        return "onnx-int8"
    return "onnx+bf16" if cpu_has_bf16() else "onnx"


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a browser test saves its screenshot: docs/NAME with EMOTION_WRITE_SCREENSHOTS=1 (to redo the README's
    pictures), else a temporary folder, so that a test run never rewrites a tracked file."""
    if os.environ.get("EMOTION_WRITE_SCREENSHOTS") == "1":
        return Path(__file__).resolve().parents[1] / "docs" / name
    return tmp_path / name


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_txt(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Write rows as `text;label` lines."""
    path.write_text("".join(f"{text};{label}\n" for text, label in rows))
    return path


def neutral_toy_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """The toy task with a fourth label, neutral: its rows have a NEUTRAL_CUES word and no emotion cue.

    Every row ends in a full stop, "!" or nothing, so punctuation tells no label.
    """
    rng = random.Random(seed)
    rows = toy_rows(n - n // 4, seed)
    for _ in range(n // 4):
        words = rng.sample(FILLER, 5) + [rng.choice(NEUTRAL_CUES)]
        rng.shuffle(words)
        rows.append((" ".join(words), "neutral"))
    rng.shuffle(rows)
    return [(text + rng.choice(["", ".", "!"]), label) for text, label in rows]


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
