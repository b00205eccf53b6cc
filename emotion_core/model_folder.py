"""The model folder: what its files are called, how they are read, and how anything is written.

Every folder a command writes (train, soup, shift, calibrate, evaluate, export) holds the same
files, and the apps, `score` and the Space bundle read them. This module is the one place that
names them, and the one place that writes a file or a folder so that a crash never leaves half
of one where a reader looks: under a temporary name beside it, then renamed into place.
"""

import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import EmotionCoreError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
FLOAT_ONNX = "model.onnx"
INT8_ONNX = "model.int8.onnx"
TOKENIZER = ("tokenizer.json", "tokenizer_config.json")
METRICS = "metrics.json"
RUN_CONFIG = "run_config.json"
TRAINING_ARGS = "training_args.json"
NORMALIZATION = "normalization.json"
CALIBRATION = "calibration.json"
RELIABILITY = "reliability.png"
CONFUSION = "confusion_matrix.png"
CARD = "README.md"
SERVED = (CONFIG, WEIGHTS, FLOAT_ONNX, INT8_ONNX, *TOKENIZER, METRICS, RUN_CONFIG, CONFUSION, CARD, NORMALIZATION,
          CALIBRATION, RELIABILITY)  # what an app needs of a folder (the Space bundle copies these)
STALE_WITH_NEW_WEIGHTS = (FLOAT_ONNX, INT8_ONNX, CALIBRATION, RELIABILITY)  # redone when a command changes the weights


def check_model_folder(folder: Path) -> None:
    """Refuse a folder that cannot hold a usable model, naming the folder and what is wrong."""
    if not folder.is_dir():
        raise EmotionCoreError(f"Model folder {folder} is not a folder.")
    config = folder / CONFIG
    if not config.is_file():
        raise EmotionCoreError(f"Model folder {folder} has no {CONFIG}: is it a trained model folder?")
    try:
        id2label = json.loads(config.read_text()).get("id2label") or {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EmotionCoreError(f"Model folder {folder}: {CONFIG} is not valid JSON ({exc}).") from None
    if not id2label or all(str(name).startswith("LABEL_") for name in id2label.values()):
        raise EmotionCoreError(f"Model folder {folder}: {CONFIG} names no labels (id2label); retrain with train.py.")
    if not (folder / WEIGHTS).is_file() and not (folder / WEIGHTS_INDEX).is_file():
        if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
            raise EmotionCoreError(
                f"Model folder {folder} has only pickle weights (.bin), which can run code when loaded; "
                "only safetensors are accepted. Convert it with `model.save_pretrained(folder)`."
            )
        raise EmotionCoreError(f"Model folder {folder} has no weights ({WEIGHTS} is missing).")


def read_json(path: Path, *keys: str, missing_ok: bool = False) -> dict:
    """A JSON object that holds `keys` ({} for an absent file with `missing_ok`: Hub models lack ours);
    EmotionCoreError naming the file when it is unreadable or lacks a key."""
    if missing_ok and not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        missing = [key for key in keys if key not in data]
    except (OSError, ValueError, TypeError) as exc:
        raise EmotionCoreError(f"{path} could not be read ({type(exc).__name__}: {exc}).") from None
    if missing:
        raise EmotionCoreError(f"{path} lacks {', '.join(missing)}: was it written by train.py or `python -m emotion_core`?")
    return data


def write_json(path: Path, data: dict) -> None:
    """A JSON file, indented, written atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """A text file, written atomically."""
    with atomic_file(path) as partial:
        partial.write_text(text)


def partial_path(path: Path) -> Path:
    """Where `path` is written before it is renamed: hidden, beside it, named for this process, same suffix
    (matplotlib and pandas pick a format by it)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def remove_stale_partials(path: Path) -> None:
    """Delete the partial files of `path` that killed processes left behind; a live process's stay."""
    for partial in path.parent.glob(f".{path.name}.tmp-*"):
        pid = partial.name.rsplit(".tmp-", 1)[1].removesuffix(path.suffix)
        if pid.isdigit() and not process_alive(int(pid)):
            partial.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """True when a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def is_model_folder(path: Path) -> bool:
    """A folder a model can be loaded from (its config.json is there)."""
    return (path / CONFIG).is_file()


def check_replaceable(out: Path, ours: Callable[[Path], bool] = is_model_folder, what: str = "a model folder") -> None:
    """Refuse an output that names something other than nothing, an empty folder, or what this command writes:
    replacing a folder deletes all it held (a `-o results/` must not take a person's files with it)."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and (ours(out) or not any(out.iterdir()))):
        raise EmotionCoreError(f"{out} is there already and is not {what}: writing there would delete it. "
                               "Choose a new name, or move it away first.")


@contextmanager
def new_folder(out: Path, copy_of: Path | None = None, leave_out: Sequence[str] = (),
               ours: Callable[[Path], bool] = is_model_folder, what: str = "a model folder") -> Iterator[Path]:
    """Yield a temporary folder beside `out` (a copy of `copy_of` without files named in `leave_out`, or
    empty) to fill; on success it replaces `out` with two renames, and it is always cleaned up. An `out` that
    holds something else than `ours` is refused first (`check_replaceable`)."""
    out = Path(out).resolve()
    check_replaceable(out, ours, what)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if copy_of is not None:
            shutil.copytree(copy_of, tmp, ignore=lambda _, names: [n for n in names if n in leave_out])
        else:
            tmp.mkdir()
        yield tmp
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(new: Path, target: Path) -> None:
    """Move `new` to `target`, replacing any older folder there with two renames."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_with(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(partial)` to make a file of any kind (an image, an ONNX graph), then rename it into place."""
    with atomic_file(path) as partial:
        write(partial)
    return path
