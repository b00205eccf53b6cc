"""The training recipe: the base model, `Trainer` and its loss, the run's description, and one complete model folder
written atomically (its figures from evaluation.py, its exports from export.py)."""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch
import transformers
from datasets import Dataset, DatasetDict
from torch.utils.data import SequentialSampler
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from .calibration import save_calibration
from .card import build_model_card
from .config import DataConfig, ModelConfig, TrainConfig, base_model_id, resolve_base_model
from .errors import EmotionCoreError
from .evaluation import plot_split_confusion
from .export import export_onnx
from .hub import hub_failure, hub_unreachable
from .metrics import compute_metrics
from .model_folder import CARD, METRICS, RUN_CONFIG, TRAINING_ARGS, new_folder, write_json, write_text
from .normalize import parse_steps, save_steps
from .sources import Source, source_entry

logger = logging.getLogger(__name__)

RUN_MARK = "run.sha256"  # beside the checkpoints: which run (data and settings) they belong to


def load_base_model(model_cfg: ModelConfig, labels: list[str]):
    """Load the tokenizer and a fresh classification head on the pretrained encoder (safetensors only)."""
    source = resolve_base_model(model_cfg.base_model)
    unreachable = None if Path(source).exists() else hub_unreachable()  # then only the local cache is tried
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=bool(unreachable))
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)}, use_safetensors=True, trust_remote_code=False,
            dtype=torch.float32,  # train in full precision even from a float16 checkpoint; AMP handles GPUs
            local_files_only=bool(unreachable),
        )
    except (OSError, ValueError) as exc:
        if Path(source).exists():
            raise EmotionCoreError(f"Cannot load base model from {source}: {exc}") from None
        raise hub_failure(f"base model '{model_cfg.base_model}'", exc, unreachable=unreachable) from None
    return tokenizer, model


def mixed_precision() -> dict[str, bool]:
    """bf16 where the GPU supports it, fp16 on older GPUs, full precision on CPU."""
    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def distributed_backend() -> str | None:
    """gloo for several CPU processes (torchrun / accelerate launch); None lets GPUs use NCCL."""
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return "gloo" if several and not torch.cuda.is_available() else None


def training_arguments(cfg: TrainConfig) -> TrainingArguments:
    """Trainer settings: evaluate and checkpoint every epoch, keep the best by macro-F1."""
    return TrainingArguments(
        output_dir=str(cfg.checkpoint_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a fraction of all steps
        weight_decay=cfg.weight_decay,
        label_smoothing_factor=cfg.label_smoothing,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,  # the best and the last, enough to resume
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        train_sampling_strategy="group_by_length",  # similar lengths per batch: less padding, faster
        logging_steps=50,
        seed=cfg.seed if cfg.train_seed is None else cfg.train_seed,  # set after the head is made: order and dropout only
        report_to="none",
        disable_tqdm=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        ddp_backend=distributed_backend(),
        **mixed_precision(),
    )


class InOrderTrainer(Trainer):
    """A Trainer that evaluates rows in their own order.

    transformers 5 groups evaluation batches by length too when training does, so predictions
    come back in another order than the rows; per-source metrics would then pair rows with the
    wrong sources (the labels travel with the batches, so overall figures were right).
    """

    def _get_eval_sampler(self, eval_dataset):
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def focal_loss(gamma: float):
    """The focal loss of Lin et al. (2017), as a Trainer `compute_loss_func`.

    Each text's cross-entropy is weighted by (1 - p)^gamma, p the probability of its true label:
    texts the model already gets right with confidence add almost nothing, which Mukhoti et al.
    (NeurIPS 2020) found leaves models better calibrated after temperature scaling. The Trainer
    passes `num_items_in_batch`, the texts of the whole step (all processes, all accumulated
    batches), and takes a loss divided by it as already averaged over the step.
    """
    def loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        log_p = torch.log_softmax(outputs["logits"].float(), dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
        per_text = -((1 - log_p.exp()) ** gamma) * log_p
        return per_text.mean() if num_items_in_batch is None else per_text.sum() / num_items_in_batch
    return loss


def build_trainer(model, tokenizer, tokenized: DatasetDict, cfg: TrainConfig) -> Trainer:
    """A Trainer that pads each batch dynamically and reports accuracy / macro-F1 / weighted-F1."""
    return InOrderTrainer(
        model=model,
        args=training_arguments(cfg),
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        compute_loss_func=focal_loss(cfg.focal_gamma) if cfg.focal_gamma else None,
    )


def run_training(trainer: Trainer, cfg: TrainConfig, run: str) -> dict:
    """Train (from the last checkpoint with --resume) and return the Trainer's run statistics.

    `run` (`run_fingerprint`) is written beside the checkpoints, so --resume continues only the
    run they belong to; a run started afresh removes the checkpoints of the one before it, which
    a later --resume would otherwise take for its own.
    """
    checkpoint = last_checkpoint(cfg, run) if cfg.resume else None
    if not cfg.resume and trainer.is_world_process_zero():
        for old in cfg.checkpoint_dir.glob("checkpoint-*"):
            shutil.rmtree(old)
        write_text(cfg.checkpoint_dir / RUN_MARK, run)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    return result.metrics


def run_fingerprint(run_config: dict, train: Dataset) -> str:
    """A digest of the run's data and settings but how long it trains (--resume may ask for more epochs)."""
    settings = {k: v for k, v in run_config.items() if k not in ("command", "versions")}
    settings["training"] = {k: v for k, v in settings["training"].items() if k not in ("epochs", "max_steps")}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for text, label in zip(train["text"], train["label"]):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def last_checkpoint(cfg: TrainConfig, run: str) -> str:
    """The last complete checkpoint of this run (a run killed while saving leaves one without its trainer_state.json);
    EmotionCoreError when there is none, when they are another run's, or when it has trained longer than asked (a run
    killed after its last checkpoint, while it evaluated or saved, resumes to finish)."""
    complete = [p for p in cfg.checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    if not complete:
        raise EmotionCoreError(f"--resume: no checkpoint in {cfg.checkpoint_dir} is complete; start without --resume.")
    mark = cfg.checkpoint_dir / RUN_MARK
    if not mark.is_file() or mark.read_text() != run:
        raise EmotionCoreError(f"--resume: the checkpoints in {cfg.checkpoint_dir} are another run's (other data or "
                               "settings); start without --resume.")
    last = max(complete, key=lambda p: int(p.name.rsplit("-", 1)[1]))
    state = json.loads((last / "trainer_state.json").read_text())
    if (state["global_step"] > cfg.max_steps) if cfg.max_steps > 0 else (state.get("epoch", 0) > cfg.epochs):
        raise EmotionCoreError(f"--resume: {last.name} has trained longer than this run asks (epoch {state.get('epoch', 0):g}, "
                               f"step {state['global_step']}); ask for as many epochs, or start without --resume.")
    return str(last)


def describe_run(data_cfg: DataConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, sources: list[Source],
                 labels: list[str], command: str | None = None) -> dict:
    """The settings saved beside the model (run_config.json), as nanoGPT keeps its config: the sources,
    steps and labels as the run resolved and used them, not worked out again."""
    return {
        "command": command,
        "base_model": base_model_id(model_cfg.base_model),
        "dataset": data_cfg.dataset_name or " + ".join(source.name for source in sources),
        "sources": [source_entry(source) for source in sources],
        "normalize": list(parse_steps(data_cfg.normalize)),
        "labels": labels,
        "max_length": model_cfg.max_length,
        "training": {
            "epochs": train_cfg.epochs, "learning_rate": train_cfg.learning_rate, "batch_size": train_cfg.batch_size,
            "warmup_ratio": train_cfg.warmup_ratio, "weight_decay": train_cfg.weight_decay,
            "label_smoothing": train_cfg.label_smoothing, "focal_gamma": train_cfg.focal_gamma, "seed": train_cfg.seed,
            "train_seed": train_cfg.train_seed, "max_train_samples": data_cfg.max_train_samples, "max_steps": train_cfg.max_steps,
        },
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
    }


def save_model_folder(trainer: Trainer, out_dir: str | Path, metrics: dict, run_config: dict, fp16: bool = False,
                      calibration: dict | None = None, export: bool = True) -> Path:
    """Write weights, tokenizer, config, metrics, confusion matrix and card, then rename into place.

    Everything goes to a hidden temporary folder beside the target first, so an interrupted
    run never leaves half a model where the apps look.
    """
    out = Path(out_dir).resolve()
    with new_folder(out) as tmp:
        write_model_files(trainer, tmp, metrics, run_config, fp16, model_name=out.name, export=export)
        if calibration:
            save_calibration(tmp, calibration)
    return out


def write_model_files(trainer: Trainer, tmp: Path, metrics: dict, run_config: dict, fp16: bool, model_name: str,
                      export: bool = True) -> None:
    """Everything a model folder holds, written into `tmp`."""
    model, tokenizer = trainer.model, trainer.processing_class
    state = {k: v.half() if fp16 and v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.save_pretrained(tmp, state_dict=state)  # model.safetensors
    tokenizer.model_max_length = run_config["max_length"]  # inference truncates where training did
    tokenizer.save_pretrained(tmp)
    write_json(tmp / METRICS, metrics)
    write_json(tmp / RUN_CONFIG, run_config)
    save_steps(tmp, tuple(run_config["normalize"]))  # inference normalises text as training did
    write_text(tmp / TRAINING_ARGS, trainer.args.to_json_string())
    plot_split_confusion(metrics, tmp)
    write_text(tmp / CARD, str(build_model_card(metrics, run_config, model_name=model_name)))
    if not export:
        return
    # the fast CPU engines' files, so apps and `score` are fast by default; checked against fp32 on validation
    from .predict import Classifier

    reference = Classifier.from_pretrained(tmp, engine="torch")  # the weights as saved (fp16-rounded with --save-fp16)
    export_onnx(reference.model, tmp, score=reference.scorer(trainer.eval_dataset["input_ids"]))
