"""The feedback loop, measured: do a person's corrections, taken in the review queue's order, teach a model
what it was never shown, and do they teach it more than corrections taken at random?

    $ python -m benchmarks.bench_loop                 # about an hour on 2 CPUs, most of it the start model
    $ python -m benchmarks.bench_loop --work-dir DIR  # where the models and files go (kept: a second run reuses them)
    $ python -m benchmarks.bench_loop --seed 1        # another random draw and retraining seed, the same start model
    $ python -m benchmarks.bench_loop --split-seed 1  # another pool and never-shown half, the same start model

The person's data: the GoEmotions train rows whose single label is one of SLICE, labelled as the
bundled mix maps them (annoyance as anger, ...). A seeded half is the pool people correct, the
other half is never shown to any model and measures the result.

1. The start model: the bundled recipe (the training command in models/emotion-minilm/run_config.json)
   with the SLICE rows left out of GoEmotions (train.py calibrates each model it trains; the recipe's
   neutral shift is left out, for every model here).
2. The pool in each of the review queue's orders (`queue.review_queue`: topics, the default, density,
   balanced and margin) and in a seeded random order; the first CORRECTIONS rows of each saved as corrections in a
   SQLite store (`feedback.correction_for`, as the apps do) and exported (`feedback.export`). With `--rounds`, a
   queue order's corrections come in equal rounds, the rest of the pool queued again by a model retrained (as in
   3) on every correction before.
3. Each export retrained on as docs/feedback.md's quick recipe says: the start model trained one
   more epoch on the corrections beside a replay of the recipe's own data (REPLAY); and, to show what
   the corrections themselves bring, the same epoch on the replay alone.
4. The gate (`feedback.gate`) for each retrained model against the start model, the never-shown half as
   its held-back corrections: accuracy there and on each test split of the recipe's data, and the verdict.

Every setting here was fixed before the first run; the never-shown half plays no part in any choice.
The balanced order was added after the first run, in which margin order fell short of random, and
was made the queue's default before it was measured, for the reason `feedback.balanced_places` gives.
The density order was added after balanced order too fell short of random; it was chosen among
candidate orders on the pool alone (a quick stand-in model, the pool halved: docs/feedback.md) and
made the default before it was measured here; so was the topics order, after density order fell short
(its rule: docs/feedback.md). Two more candidate orders (spread, clusters) were measured here after topics
order fell short, and fell short too; they were then removed from the queue (docs/feedback.md has their
figures, the commit log their code). Rounds (`--rounds`: the queue's corrections taken in rounds, the model
retrained between them) were measured next, and met the target; margin order in rounds after them, which cost
too much on the emotion test split to become the default.
"""

import argparse
import json
import random
import shlex
import subprocess
import sys
from pathlib import Path

from benchmarks.common import GOEMOTIONS, machine
from emotion_core.config import BUNDLED_MODEL, PROJECT_ROOT
from emotion_core.sources import EKMAN_LOVE, LABEL_MAPS, read_goemotions

SLICE = ("annoyance", "disappointment", "confusion", "nervousness")  # anger, sadness, surprise, fear when mapped
CORRECTIONS = 500
SPLIT_SEED = 0  # the slice's halves
REPLAY = {"emotion": 0.2, "goemotions": 0.1, "corrections": 2}  # source weights of the one-epoch retraining
RETRAIN_FLAGS = ["--batch-size", "32", "--learning-rate", "3e-5", "--focal-gamma", "2", "--epochs", "1", "--save-fp16",
                 "--no-export"]
TRAIN_SEED = 42  # the retraining's seed is TRAIN_SEED + --seed
ORDERS = ("topics", "density", "balanced", "margin", "random")


def slice_halves(seed: int = SPLIT_SEED) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The person's data as (text, model label): the pool people correct, and the half never shown."""
    texts, labels = read_goemotions(GOEMOTIONS / "train.tsv")
    rows = [(text, EKMAN_LOVE[label]) for text, label in zip(texts, labels) if label in SLICE]
    random.Random(seed).shuffle(rows)
    return rows[:len(rows) // 2], rows[len(rows) // 2:]


def ensure_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")
    return path


def label_map_without_slice() -> dict[str, str]:
    """The bundled mix's GoEmotions label map, the SLICE labels left out."""
    return {k: v for k, v in LABEL_MAPS["ekman-love+neutral"].items() if k not in SLICE}


def recipe_sources(work: Path) -> list[dict]:
    """The bundled mix's sources, GoEmotions read through `label_map_without_slice`."""
    label_map = label_map_without_slice()
    mix = json.loads((PROJECT_ROOT / "examples/sweep/mix-neutral-e2-n1.json").read_text())
    for source in mix["sources"]:
        source["data"] = str((PROJECT_ROOT / source["data"]).resolve())
        if source["name"] == "goemotions":
            source["label_map"] = str(write_json(work / "label-map-without-slice.json", label_map))
    return mix["sources"]


def train(command: list[str], output: Path) -> Path:
    """Run train.py as its own process (its progress bar shows); a folder already trained is kept."""
    if not (output / "config.json").is_file():
        subprocess.run([sys.executable, "train.py", *command, "--output-dir", str(output)], cwd=PROJECT_ROOT, check=True)
    return output


def start_model(work: Path) -> Path:
    """The bundled recipe's training command, on the mix without the slice."""
    command = shlex.split(json.loads((BUNDLED_MODEL / "run_config.json").read_text())["command"].splitlines()[0])[2:]
    mix = write_json(work / "mix-start.json", {"sources": recipe_sources(work)})
    command[command.index("--mix") + 1] = str(mix)
    del command[command.index("--output-dir"):command.index("--output-dir") + 2]
    return train(command, work / "start")


def in_order(classifier, rows: list[tuple[str, str]], order: str, work: Path, seed: int) -> list[tuple[str, str]]:
    """The rows in `order`: a review queue order (`queue.review_queue` on them as a CSV file), or "random"."""
    import pandas as pd

    from emotion_core.queue import review_queue

    if order == "random":
        return random.Random(seed).sample(rows, len(rows))
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(work / "pool.csv", index=False)
    review_queue(work / "pool.csv", work / f"queue-{order}.csv", classifier, text_column="text", order=order)
    queued = pd.read_csv(work / f"queue-{order}.csv", dtype=str, keep_default_na=False)
    return list(zip(queued["text"], queued["label"]))


def corrections(start: Path, classifier, pool: list[tuple[str, str]], order: str, work: Path, seed: int,
                rounds: int = 1) -> Path:
    """The first CORRECTIONS rows of the pool in `order`, stored and exported as the apps do. In rounds, as a person
    who retrains between them would work: each round's share comes from the rows not yet corrected, queued by the
    start model retrained (as `retrain` does) on every correction before it."""
    from emotion_core import Classifier
    from emotion_core.feedback import FeedbackStore, correction_for, export

    name = f"{order}{rounds_suffix(rounds)}{suffix(seed)}"
    store = FeedbackStore(work / f"feedback-{name}.db")
    store.path.unlink(missing_ok=True)
    rest = list(pool)
    for done in range(rounds):
        if done:
            so_far = export(store.rows(), work / f"corrections-{name}-round{done}.csv")
            folder = retrain(start, work, f"retrained-{order}{rounds_suffix(rounds)}-round{done}", so_far, seed)
            classifier = Classifier.from_pretrained(folder, engine="torch")
        chosen = in_order(classifier, rest, order, work, seed)[:CORRECTIONS // rounds]
        for text, label in chosen:
            store.save(correction_for(classifier, text, label, source="review"))
        taken = set(chosen)
        rest = [row for row in rest if row not in taken]
    return export(store.rows(), work / f"corrections-{name}.csv")


def rounds_suffix(rounds: int) -> str:
    """What taking the corrections in rounds adds to the name of the files and folders it makes."""
    return f"-rounds{rounds}" if rounds > 1 else ""


def suffix(seed: int) -> str:
    """What a seed adds to the name of the files and folders it makes (nothing for the first)."""
    return f"-seed{seed}" if seed else ""


def retrain(start: Path, work: Path, name: str, corrections_csv: Path | None, seed: int) -> Path:
    """One epoch more from the start model: the corrections (if any) beside a seeded share of the recipe's data."""
    sources = [{**source, "weight": REPLAY[source["name"]]} for source in recipe_sources(work)]
    if corrections_csv is not None:
        sources.append({"name": "corrections", "train_file": str(corrections_csv), "weight": REPLAY["corrections"]})
    name += suffix(seed)
    mix = write_json(work / f"mix-{name}.json", {"sources": sources})
    return train(["--base-model", str(start), "--mix", str(mix), *RETRAIN_FLAGS, "--seed", str(TRAIN_SEED + seed)],
                 work / name)


def measure(models: dict[str, Path], never_shown: list[tuple[str, str]], work: Path) -> dict[str, dict]:
    """The gate's decision for each retrained model against the start model, the never-shown half as its
    held-back corrections: both models' accuracy there and on each test split, and the verdict."""
    import pandas as pd

    from emotion_core import Classifier
    from emotion_core.feedback import gate

    held = work / "never-shown.csv"
    pd.DataFrame(never_shown, columns=["text", "label"]).to_csv(held, index=False)
    start = Classifier.from_pretrained(models["start"], engine="torch")
    return {name: gate(start, Classifier.from_pretrained(folder, engine="torch"), held)
            for name, folder in models.items() if name != "start"}


def table(decisions: dict[str, dict]) -> str:
    """One row per model: accuracy on each split (the never-shown half first), the change from the start model in
    points, and the gate's verdict."""
    first = next(iter(decisions.values()))["rows"]
    splits = ["never-shown half" if r["split"] == "held-back corrections" else r["split"] for r in first]
    lines = ["| model | " + " | ".join(f"{s}: accuracy | change (points)" for s in splits) + " | gate |",
             "| --- |" + " ---: | ---: |" * len(splits) + " --- |",
             "| start | " + " | ".join(f"{r['current']:.2%} | —" for r in first) + " | — |"]
    for name, decision in decisions.items():
        cells = [f"{r['candidate']:.2%} | {100 * (r['candidate'] - r['current']):+.2f}" for r in decision["rows"]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'Replace' if decision['replace'] else 'Keep'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "emotion" / "bench-loop")
    parser.add_argument("--orders", nargs="+", choices=ORDERS, default=list(ORDERS), help="the orders to measure")
    parser.add_argument("--seed", type=int, default=0, help="the random draw's and the retraining's seed (the slice's "
                                                            "halves and the start model stay the same)")
    parser.add_argument("--split-seed", type=int, default=SPLIT_SEED,
                        help="how the slice is halved: another pool and never-shown half, the same start model (which "
                             "saw neither); its files go to a folder of their own in the work dir")
    parser.add_argument("--rounds", type=int, default=1, choices=[n for n in range(1, CORRECTIONS + 1) if CORRECTIONS % n == 0],
                        help="take each queue order's corrections in this many equal rounds, retraining between them")
    args = parser.parse_args()
    base = ensure_folder(args.work_dir.resolve())  # the start model and the replay, which no split changes
    work = base if args.split_seed == SPLIT_SEED else ensure_folder(base / f"split-{args.split_seed}")
    pool, never_shown = slice_halves(args.split_seed)
    print(f"{machine()}\nslice {', '.join(SLICE)}: pool {len(pool)}, never shown {len(never_shown)}, seed {args.seed}, "
          f"split seed {args.split_seed}", flush=True)
    start = start_model(base)

    from emotion_core import Classifier

    classifier = Classifier.from_pretrained(start, engine="torch")
    models = {"start": start}
    for order in args.orders:
        rounds = 1 if order == "random" else args.rounds  # a random draw asks no model
        name = f"+{CORRECTIONS} {order}" + (f", {rounds} rounds" if rounds > 1 else "")
        models[name] = retrain(start, work, f"retrained-{order}{rounds_suffix(rounds)}",
                               corrections(start, classifier, pool, order, work, args.seed, rounds), args.seed)
    models["replay alone"] = retrain(start, base, "retrained-replay", None, args.seed)
    result = table(measure(models, never_shown, work))
    (work / f"table{suffix(args.seed)}.md").write_text(result + "\n", encoding="utf-8")
    print(result)


if __name__ == "__main__":
    main()
