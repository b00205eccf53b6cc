"""`emotion train`: fine-tune a transformer to read the emotion in English text.

    $ emotion train --base-model minilm --data ../shared/data/emotion --output-dir models/my-model
    $ emotion train                       # distilbert-base-uncased on dair-ai/emotion (needs the Hub)
    $ emotion train --base-model minilm --data ../shared/data/emotion ../shared/data/goemotions
    $ emotion train --base-model minilm --mix examples/mix.json   # sources with their own label maps
    $ emotion train config.json           # every flag from one JSON file
    $ emotion train --help

`python train.py ...` and `python -m emotion_core train ...` are the same command.
Parse -> seed -> data -> model -> Trainer -> train -> evaluate -> calibrate -> save -> optional push.
"""

import json
import shlex
import sys
from dataclasses import fields
from pathlib import Path

from transformers import HfArgumentParser, set_seed

from .config import DataConfig, ModelConfig, TrainConfig, unknown_key
from .data import config_sources, load_sources, tokenize_splits
from .errors import EmotionCoreError
from .evaluation import calibrate_outputs, calibration_summary, evaluate_splits, summary_lines
from .hub import configure_hub, push_model
from .model_folder import check_replaceable
from .training import build_trainer, describe_run, load_base_model, run_fingerprint, run_training, save_model_folder

PROG = "emotion train"


def parse(argv: list[str]) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """Flags, or a single JSON file holding them."""
    parser = HfArgumentParser((DataConfig, ModelConfig, TrainConfig), prog=PROG,
                              description="Fine-tune a transformer on emotion data and save one complete model folder.")
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parse_file(parser, Path(argv[0]))
    *configs, unknown = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if unknown:  # as argparse says it (usage, then the flags), not HfArgumentParser's traceback
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return tuple(configs)


def parse_file(parser: HfArgumentParser, path: Path) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """The settings of a JSON run file, keyed by the flags' names (output_dir, base_model, ...); EmotionCoreError
    saying what is wrong with it."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmotionCoreError(f"Run file {path} not found.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EmotionCoreError(f"Run file {path} is not valid JSON: {exc}.") from None
    unknown = unknown_key(settings, {f.name for config in (DataConfig, ModelConfig, TrainConfig) for f in fields(config)})
    if unknown is not None:
        raise EmotionCoreError(f"Run file {path}: unknown setting {unknown!r} (`emotion train --help` lists them; "
                               "the file spells --output-dir as output_dir).")
    try:
        return parser.parse_dict(settings)
    except EmotionCoreError:  # a value out of range, said as the flag says it
        raise
    except (ValueError, TypeError) as exc:  # a value of the wrong kind
        raise EmotionCoreError(f"Run file {path}: a value of the wrong kind ({exc}); numbers go without quotes.") from None


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and save; return the metrics that went into metrics.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    data_cfg, model_cfg, train_cfg = parse(argv)
    configure_hub()
    check_replaceable(Path(train_cfg.output_dir))  # before the training, not after it
    set_seed(train_cfg.seed)
    sources = config_sources(data_cfg)  # resolved once: trained on, then described
    splits, report = load_sources(data_cfg, seed=train_cfg.seed, sources=sources)
    labels = splits["train"].features["label"].names
    tokenizer, model = load_base_model(model_cfg, labels)
    tokenized = tokenize_splits(splits, tokenizer, model_cfg.max_length)
    trainer = build_trainer(model, tokenizer, tokenized, train_cfg)
    run = describe_run(data_cfg, model_cfg, train_cfg, sources, labels, command=shlex.join([*PROG.split(), *argv]))
    stats = run_training(trainer, train_cfg, run_fingerprint(run, splits["train"]))
    metrics, outputs = evaluate_splits(trainer, tokenized, labels)
    calibration = calibrate_outputs(outputs, labels)
    metrics |= {"train_runtime_s": stats["train_runtime"], "train_samples_per_second": stats["train_samples_per_second"],
                "train_rows": len(splits["train"]), "data": report, "calibration": calibration_summary(calibration)}
    if trainer.is_world_process_zero():
        out = save_model_folder(trainer, train_cfg.output_dir, metrics, run, fp16=train_cfg.save_fp16, calibration=calibration,
                                export=train_cfg.export)
        print(f"Saved {out}", *report.lines(), *summary_lines(metrics), sep="\n  ")
        if train_cfg.push_to_hub:
            print(f"Pushed to {push_model(out, train_cfg.hub_model_id, private=train_cfg.hub_private)}")
    return metrics
