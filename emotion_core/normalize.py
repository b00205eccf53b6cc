"""Text normalisation shared by training and inference, so the model sees the same kind of text in both.

The emotion data set is lower-cased and has no links or user names; Reddit comments (GoEmotions)
have links, `u/name` mentions and `[NAME]` where a person's name was masked. The steps map all of
that onto one form. Training saves the steps in the model folder (`normalization.json`) and
`Classifier` reads them back, so a model is always fed text the way it was trained.
"""

import json
import re
from pathlib import Path

from .errors import EmotionCoreError

NORMALIZATION_FILE = "normalization.json"

# step -> (pattern, replacement); "lowercase" and "spaces" are handled in `normalize`
PATTERNS = {
    "urls": (re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE), "http"),
    "mentions": (re.compile(r"(?<![\w/])(?:/?u/|@)[A-Za-z0-9_-]{2,}"), "@user"),
    "names": (re.compile(r"\[NAME\]"), "someone"),  # GoEmotions' mask for a person's name
}
STEPS = ("urls", "mentions", "names", "lowercase", "spaces")
DEFAULT_STEPS = STEPS


def parse_steps(spec: str | None) -> tuple[str, ...]:
    """Read `--normalize`: `default`, `none`, or a comma-separated list of steps."""
    spec = (spec or "none").strip().lower()
    if spec == "default":
        return DEFAULT_STEPS
    if spec == "none":
        return ()
    steps = tuple(step.strip() for step in spec.split(","))
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise EmotionCoreError(f"Unknown normalisation step {unknown[0]!r}: choose from {', '.join(STEPS)}, or default / none.")
    return tuple(step for step in STEPS if step in steps)  # always applied in the same order


def normalize(text: str, steps: tuple[str, ...]) -> str:
    """Apply the steps to one text."""
    for step in steps:
        if step in PATTERNS:
            pattern, replacement = PATTERNS[step]
            text = pattern.sub(replacement, text)
        elif step == "lowercase":
            text = text.lower()
        elif step == "spaces":
            text = " ".join(text.split())
    return text


def save_steps(folder: Path, steps: tuple[str, ...]) -> None:
    """Record the steps in a model folder."""
    (Path(folder) / NORMALIZATION_FILE).write_text(json.dumps({"steps": list(steps)}, indent=2) + "\n")


def load_steps(folder: Path | None) -> tuple[str, ...]:
    """The steps a model folder was trained with (none for folders without the file, e.g. Hub models)."""
    path = Path(folder) / NORMALIZATION_FILE if folder else None
    if path is None or not path.is_file():
        return ()
    try:
        steps = json.loads(path.read_text())["steps"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise EmotionCoreError(f"Model folder {folder}: {NORMALIZATION_FILE} is damaged; retrain or delete it.") from None
    return parse_steps(",".join(steps) if steps else "none")
