"""The command line, `emotion` (or `python -m emotion_core`): `train`, `score IN.csv -o OUT.csv`, `predict TEXT`,
`export`, `calibrate`, `evaluate`, `sweep`, `soup`, `shift`, `feedback stats|export|queue|gate`, `space build|deploy`.

The library does the work; this module parses arguments and prints. Every EmotionCoreError
becomes one line on stderr and exit status 1.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from .engines import ENGINES
from .errors import EmotionCoreError
from .hub import configure_hub
from .model_folder import INT8_ONNX, METRICS, read_json


def cmd_score(args: argparse.Namespace) -> None:
    """Score a CSV file here, or a table of any size on a Ray or Spark cluster."""
    from .batch import score_csv
    from .predict import Classifier

    if args.on != "local":
        print(score_cluster(args))
        return
    if args.address or args.actors or args.id_column:
        raise EmotionCoreError("--address, --actors and --id-column are for --on ray or --on spark.")
    classifier = Classifier.from_pretrained(args.model, engine=args.engine, any_language=args.any_language or None)
    summary = score_csv(args.input, args.output, classifier, text_column=args.text_column,
                        encoding=args.encoding, progress=not args.quiet, explain=args.explain, sentences=args.sentences)
    print(summary)


def score_cluster(args: argparse.Namespace):
    """`score --on ray|spark`: the options that apply there, the others refused by name."""
    refused = [flag for flag, used in (("--explain", args.explain), ("--sentences", args.sentences),
                                       ("--encoding", args.encoding != "utf-8-sig")) if used]
    if refused:
        raise EmotionCoreError(f"{', '.join(refused)} work with local scoring only; leave out --on {args.on}.")
    common = {"model": args.model, "text_column": args.text_column, "engine": args.engine, "id_column": args.id_column,
              "address": args.address, "any_language": args.any_language or None}
    if args.on == "spark":
        from .spark_scoring import score_on_spark

        if args.actors:
            raise EmotionCoreError("--actors is for --on ray: Spark runs one task per core its master gives it.")
        return score_on_spark(args.input, args.output, **common)
    from .ray_scoring import score_on_ray

    return score_on_ray(args.input, args.output, actors=args.actors, **common)


def cmd_predict(args: argparse.Namespace) -> None:
    """Classify texts given on the command line, printing one JSON object per text."""
    from .predict import Classifier

    classifier = Classifier.from_pretrained(args.model, engine=args.engine, any_language=args.any_language or None)
    for text, prediction in zip(args.texts, classifier.predict_batch(args.texts)):
        print(json.dumps({"text": text, **prediction.as_dict()}))


def folder_and_data(args: argparse.Namespace) -> tuple:
    """The model folder a folder command works on (default: the bundled one) and the data it names, if any."""
    from .config import DataConfig, bundled_model

    return args.model or bundled_model(), DataConfig(data=args.data, label_map=args.label_map) if args.data else None


def cmd_export(args: argparse.Namespace) -> None:
    """Write the ONNX files the fast engines run into the model folder, the int8 one checked on validation texts."""
    from .export import GUARD_AGREEMENT, MAX_RESCORED, export_folder

    logging.getLogger("emotion_core.export").setLevel(logging.INFO)  # say how the int8 file fared on validation
    folder, data_cfg = folder_and_data(args)
    written = export_folder(folder, data_cfg)
    for path in written:
        print(f"Wrote {path}")
    if INT8_ONNX not in {path.name for path in written}:
        print(f"No int8 export of {folder} keeps {GUARD_AGREEMENT:.1%} of labels identical rescoring at most "
              f"{MAX_RESCORED:.0%} of texts in fp32; none written.")


def cmd_train(args: argparse.Namespace) -> None:
    """Fine-tune and save a model folder (its flags are the train command's own: `emotion train --help`)."""
    from .train import main as train

    logging.getLogger().setLevel(logging.INFO)  # a long run says what it is doing
    train(args.train_flags)


def cmd_calibrate(args: argparse.Namespace) -> None:
    """Fit the calibration of an existing model folder and report it before and after."""
    from .evaluation import calibrate_folder

    folder, data_cfg = folder_and_data(args)
    print_calibration(folder, calibrate_folder(folder, data_cfg))


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Redo an existing model folder's figures and calibration on the CPU in fp32, and report them."""
    from .evaluation import calibrate_folder, summary_lines

    folder, data_cfg = folder_and_data(args)
    report = calibrate_folder(folder, data_cfg, figures=True)
    print(f"{folder}:", *summary_lines(report["figures"]), sep="\n  ")
    print_calibration(folder, report)


def print_calibration(folder, report: dict) -> None:
    """The fitted temperatures, and ECE and NLL before and after on each split."""
    own = "".join(f", {t:.3f} for texts answered {name}" for name, t in report.get("label_temperatures", {}).items())
    print(f"{folder}: temperature {report['temperature']:.3f}{own}")
    for split in ("validation", "test"):
        if split in report:
            m = report[split]
            print(f"  {split} (n={m['n']:,}): ECE {100 * m['ece_before']:.2f}% -> {100 * m['ece_after']:.2f}%, "
                  f"NLL {m['nll_before']:.4f} -> {m['nll_after']:.4f}, labels unchanged: {m['labels_unchanged']}")


def cmd_sweep(args: argparse.Namespace) -> None:
    """Train every run of a grid file, choose on validation, print the table and the chosen run's figures."""
    from .sweep import run_sweep, summary_table

    print(*summary_table(run_sweep(args.grid, args.out, jobs=args.jobs), args.out), sep="\n")


def cmd_soup(args: argparse.Namespace) -> None:
    """Average the weights of finished runs (sweeps' and model folders), greedily on validation, into one model folder."""
    from .evaluation import summary_lines
    from .soup import make_soup, soup_table

    record = make_soup(args.runs, args.out, rule=args.rule, min_score=args.min_score)
    metrics = read_json(Path(args.out) / METRICS)
    print(*soup_table(record), "", f"{args.out}: the mean of {', '.join(record['kept'])}", *summary_lines(metrics), sep="\n")


def cmd_shift(args: argparse.Namespace) -> None:
    """Shift one label's prior on a copy of a model folder, the offset chosen on validation by a grid's requirements."""
    from .evaluation import summary_lines
    from .prior import shift_prior, shift_table

    record = shift_prior(args.model, args.label, args.rule, args.out)
    metrics = read_json(Path(args.out) / METRICS)
    print(*shift_table(record), "", f"{args.out}:", *summary_lines(metrics), sep="\n")


def cmd_augment(args: argparse.Namespace) -> None:
    """Write template rows that teach negation and sarcasm, as a `text;label` file a mix file can name."""
    from .augment import write_augmented

    path = write_augmented(args.out, args.rows, args.seed)
    print(f"{path}: {args.rows:,} rows")


def cmd_space_build(args: argparse.Namespace) -> None:
    """Write a Space folder."""
    import time

    from .space import build_space

    start = time.perf_counter()
    folder = build_space(args.dir, model_id=args.model_id, space_id=args.space_id)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"Built {folder} ({size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")


def cmd_space_deploy(args: argparse.Namespace) -> None:
    """Build and upload a Space."""
    from .space import deploy_space

    print(f"Deployed {deploy_space(args.space_id, private=args.private, model_id=args.model_id)}")


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {value!r}")
    return int(value)


def share(value: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not {value!r}")
    return number


def cmd_feedback(args: argparse.Namespace) -> None:
    """`feedback stats|export|pull|queue|gate`: what people corrected, as a table, as training data, from a Space's Hub
    repo, what to ask next, and whether a model retrained on it should be served."""
    from . import feedback

    if args.feedback_command == "queue":
        from .predict import Classifier
        from .queue import review_queue

        path = Path(args.db) if args.db else feedback.default_path()
        summary = review_queue(args.input, args.output, Classifier.from_pretrained(args.model, engine=args.engine),
                               text_column=args.text_column, order=args.order, encoding=args.encoding,
                               corrected=feedback.corrected_texts(path))
        done = f"; the {summary.corrected} corrected already (in {path}) last, column corrected" if summary.corrected else ""
        print(f"Wrote {summary.rows} rows to {args.output}, in {args.order} order (column margin: how unsure the model is{done}).")
        return
    if args.feedback_command == "gate":
        print(gate(args))
        return
    path = Path(args.db) if args.db else feedback.default_path()
    if args.feedback_command == "pull":
        print(pull(args.repo, feedback.FeedbackStore(path)))
        return
    rows = feedback.read_store(path)
    if args.feedback_command == "export":
        feedback.check_exports(path, Path(args.output), args.held_back and Path(args.held_back))
        train, held = feedback.split_corrections(rows, args.hold_out) if args.held_back else (rows, [])
        print(f"Wrote {len(train)} corrections to {feedback.export(train, args.output)} (columns text, label: a training source).")
        if args.held_back:
            print(f"Held back {len(held)} in {feedback.export(held, args.held_back)} for `emotion feedback gate`.")
        return
    print(json.dumps(feedback.stats(rows), indent=2))


def pull(repo_id: str, store) -> str:
    """`feedback pull`: add the corrections a Space committed to its Hub repo to a local store."""
    import tempfile

    from .feedback import read_lines
    from .hub import download_corrections

    with tempfile.TemporaryDirectory() as folder:
        files = download_corrections(repo_id, Path(folder))
        found, bad = read_lines(files)
    changed, taken = store.merge(found)
    notes = ([f"{bad} lines that were no correction passed over"] if bad else []) + (
        [f"{taken} passed over whose key the file holds with another text"] if taken else [])
    return (f"Read {len(found)} corrections in {len(files)} files of {repo_id}; {changed} new or changed in {store.path}"
            + "".join(f"; {note}" for note in notes) + ".")


def gate(args: argparse.Namespace) -> str:
    """`feedback gate`: write the report saying whether the retrained model should replace the current one."""
    from . import feedback
    from .model_folder import write_text
    from .predict import Classifier

    current, candidate = Classifier.from_pretrained(args.current), Classifier.from_pretrained(args.candidate)
    decision = feedback.gate(current, candidate, Path(args.held_back))
    write_text(Path(args.output), feedback.gate_report(decision, args.current, args.candidate))
    return f"{'Replace' if decision['replace'] else 'Keep the current model'}: the report is in {args.output}."


def build_parser() -> argparse.ArgumentParser:
    """Subcommands with help for every option."""
    parser = argparse.ArgumentParser(prog="emotion", description="Emotion classification tools (also python -m emotion_core).")
    commands = parser.add_subparsers(dest="command", required=True)
    model, engine, data, table, language = (argparse.ArgumentParser(add_help=False) for _ in range(5))  # options several share
    model.add_argument("--model", help="model folder or Hub id (default: $EMOTION_MODEL, else the bundled model)")
    engine.add_argument("--engine", choices=ENGINES, help="inference engine (default: $EMOTION_ENGINE, else auto: the fastest available)")
    data.add_argument("--data", nargs="+", help="data the model was trained on, whose validation split is used "
                                                "(default: the sources in the folder's run_config.json)")
    data.add_argument("--label-map", help="label map for the data, as in `emotion train`")
    table.add_argument("--text-column", help="column holding the text (default: 'text', else the only text column)")
    table.add_argument("--encoding", default="utf-8-sig", help="the input's encoding (default: UTF-8, with or without BOM)")
    language.add_argument("--any-language", action="store_true",
                          help="read every text whatever its language (default: $EMOTION_ANY_LANGUAGE, else English only: a "
                               "text in another language gets no emotion); each answer still names its language")

    train = commands.add_parser("train", help="fine-tune a model on emotion data (emotion train --help lists its flags)",
                                add_help=False)  # its flags, --help included, go to the train command's own parser
    train.set_defaults(func=cmd_train)

    score = commands.add_parser("score", help="score every row of a CSV file", parents=[model, engine, table, language],
                                description="Score a CSV. Example: python -m emotion_core score examples/reviews.csv -o scored.csv")
    score.add_argument("input", help="CSV file with a header row (with --on ray or spark, see --on)")
    score.add_argument("-o", "--output", required=True, help="where to write the scored CSV (written atomically)")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    score.add_argument("--on", choices=["local", "ray", "spark"], default="local",
                       help="where to score: here, streamed (default), or on Ray Data or Apache Spark; then INPUT may be CSV, "
                            "Parquet or JSON Lines (a file, a folder or a glob, local or on object storage) and OUTPUT is a "
                            "folder of Parquet files (of CSV files for a name ending .csv)")
    score.add_argument("--address", help="the cluster: a Ray address (default: $RAY_ADDRESS, else a new local Ray) or a "
                                         "Spark master URL (default: $SPARK_MASTER, else local[*])")
    score.add_argument("--actors", type=positive_int, help="scoring actors on Ray (default: the cluster's CPUs but one)")
    score.add_argument("--id-column", help="column that ties each output row to its input row on a cluster "
                                           "(default: a new column 'row', the row's number from 0)")
    score.add_argument("--explain", action="store_true",
                       help="add a top_words column: the words that drove each prediction (slower: one occlusion pass a row)")
    score.add_argument("--sentences", action="store_true",
                       help="one output row per sentence of each text (columns sentence, sentence_text), instead of "
                            "one per text with the whole text's emotion")
    score.set_defaults(func=cmd_score)

    predict = commands.add_parser("predict", help="classify texts given as arguments", parents=[model, engine, language],
                                  description='Example: python -m emotion_core predict "i feel great"')
    predict.add_argument("texts", nargs="+", help="one or more texts")
    predict.set_defaults(func=cmd_predict)

    export = commands.add_parser("export", help="write the ONNX files of the fast engines into a model folder", parents=[model, data],
                                 description="model.onnx (fp32) and model.int8.onnx, its scales fixed on the validation split, which "
                                             "keeps some layers in float: the fastest choice whose labels there are at least 99.5% "
                                             "those of fp32 (none written when no choice does, or without validation texts). "
                                             "Example: python -m emotion_core export --model models/my-model")
    export.set_defaults(func=cmd_export)

    calibrate = commands.add_parser("calibrate", help="fit the temperatures of a model folder on its validation data",
                                    parents=[model, data],
                                    description="Writes calibration.json and reliability.png into the model folder. "
                                                "Example: python -m emotion_core calibrate --model models/my-model")
    calibrate.set_defaults(func=cmd_calibrate)
    evaluate = commands.add_parser("evaluate", help="redo a model folder's figures and calibration on the CPU in fp32",
                                   parents=[model, data],
                                   description="Rewrites metrics.json (overall and per source), the confusion matrix, "
                                               "calibration and the card, e.g. for a model trained on a GPU in bf16. "
                                               "Example: python -m emotion_core evaluate --model models/my-model")
    evaluate.set_defaults(func=cmd_evaluate)

    sweep = commands.add_parser("sweep", help="train a grid of settings fixed in a file; choose on validation",
                                description="Chooses the run with the best mean over sources of validation macro-F1 and "
                                            "prints test figures for that run alone. "
                                            "Example: python -m emotion_core sweep examples/sweep/bundled.json --out runs/sweep --jobs 6")
    sweep.add_argument("grid", help='JSON file: {"common": [train.py flags], "runs": {"name": [flags], ...}}')
    sweep.add_argument("--out", required=True, help="folder for the runs' model folders, logs and sweep.json")
    sweep.add_argument("--jobs", type=int, default=1, help="runs trained at once (default 1; several share a GPU well)")
    sweep.set_defaults(func=cmd_sweep)

    soup = commands.add_parser("soup", help="average the weights of runs that started alike into one model (a greedy model soup)",
                               description="Runs from the best down, each kept if the soup does not get worse on validation "
                                           "(default: mean over sources of macro-F1; --rule calibration: ECE after temperature "
                                           "scaling, score kept at least --min-score); then the soup's figures (test too), "
                                           "calibration and card, written as a complete model folder. The runs must share "
                                           "--seed (vary --train-seed) so that they start from the same weights. "
                                           "Example: python -m emotion_core soup runs/soup --out models/emotion-soup")
    soup.add_argument("runs", nargs="+", help="--out folders of finished sweeps (with sweep.json) and/or model folders")
    soup.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    soup.add_argument("--rule", choices=("macro_f1", "calibration"), default="macro_f1",
                      help="what 'better' means (default: macro_f1)")
    soup.add_argument("--min-score", type=float, default=0.0,
                      help="with --rule calibration: the least mean over sources of validation macro-F1 a run or soup may have")
    soup.set_defaults(func=cmd_soup)

    shift = commands.add_parser("shift", help="shift how readily a model answers one label, chosen on validation",
                                description="Adds an offset to one label's logit (written into the head's bias), chosen on "
                                            "validation among -1..1 by the requirements (\"require\") of a grid file's rule: the "
                                            "middle of the widest run of offsets that meet them all. Then the copy's figures, "
                                            "calibration, card and exports are redone. Example: python -m emotion_core shift "
                                            "--model runs/neutral/e2-n1 --label neutral --rule examples/sweep/neutral.json "
                                            "--out runs/shifted")
    shift.add_argument("--model", required=True, help="model folder to start from (it is not changed)")
    shift.add_argument("--label", default="neutral", help="the label whose prior moves (default: neutral)")
    shift.add_argument("--rule", required=True, help="grid file whose rule lists the requirements")
    shift.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    shift.set_defaults(func=cmd_shift)

    augment = commands.add_parser("augment", help="write template rows that teach negation and sarcasm, to train on",
                                  description="Writes a text;label file of sentences made from templates (negated and "
                                              "sarcastic ones, and plain ones from the same fill-ins), for a source of a mix "
                                              'file: {"name": "augmented", "data": "runs/augmented/train.txt"}.')
    augment.add_argument("out", help="the file to write (replaced atomically)")
    augment.add_argument("--rows", type=int, default=3000, help="how many distinct rows (default: 3000)")
    augment.add_argument("--seed", type=int, default=0)
    augment.set_defaults(func=cmd_augment)

    corrections = commands.add_parser("feedback", help="the corrections people saved in the apps: stats, export, pull, review queue")
    corrections_commands = corrections.add_subparsers(dest="feedback_command", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--db", help="the corrections file (default: $EMOTION_FEEDBACK_DB, else ~/.local/share/emotion/feedback.db)")
    corrections_commands.add_parser("stats", parents=[store], help="corrections per label, and what the model had said")
    export_corrections = corrections_commands.add_parser("export", parents=[store], help="write the corrections as a training CSV")
    export_corrections.add_argument("-o", "--output", required=True, help="the CSV to write (text, label, ...)")
    export_corrections.add_argument("--held-back", help="also write a share of the corrections here (chosen by a hash of each "
                                                        "text), left out of OUTPUT, to judge a retrained model on (feedback gate)")
    export_corrections.add_argument("--hold-out", type=share, default=0.2, help="the share held back, 0 to 1 (default 0.2)")
    pull_parser = corrections_commands.add_parser("pull", parents=[store], help="add a Space's corrections from its Hub repo",
                                                  description="The corrections a Space with EMOTION_FEEDBACK_REPO committed to "
                                                              "that dataset repo, added to the corrections file (--db) once "
                                                              "each, however often it is pulled. The token comes from HF_TOKEN.")
    pull_parser.add_argument("--repo", required=True, help="the Space's corrections repo (its EMOTION_FEEDBACK_REPO)")
    gate_parser = corrections_commands.add_parser("gate", help="should a retrained model replace the current one? (a report)",
                                                  description="Better on the held-back corrections, and at most 0.5 points "
                                                              "worse on each test split the current model was measured on.")
    gate_parser.add_argument("--current", required=True, help="the model served now (folder or Hub id)")
    gate_parser.add_argument("--candidate", required=True, help="the retrained model")
    gate_parser.add_argument("--held-back", required=True, help="the held-back corrections (from export --held-back)")
    gate_parser.add_argument("-o", "--output", required=True, help="the report to write (Markdown)")
    queue = corrections_commands.add_parser("queue", parents=[model, engine, table, store], help="a CSV's rows, the least sure first",
                                            description="Example: python -m emotion_core feedback queue tickets.csv -o queue.csv. "
                                                        "Rows whose text the corrections file (--db) holds already come "
                                                        "last: queued again after retraining, a file asks for the rest.")
    queue.add_argument("input", help="CSV file with a header row")
    queue.add_argument("-o", "--output", required=True, help="where to write the ordered rows (with a margin column)")
    queue.add_argument("--order", default="topics",
                       help="topics (default): the file's topics in proportion to their size, the least sure among the "
                            "most typical texts of each first; margin: the least sure of all first; density: as topics, "
                            "by the model's answers instead of topics; balanced: by answer, the least sure of each first "
                            "(docs/feedback.md)")
    corrections.set_defaults(func=cmd_feedback)

    space = commands.add_parser("space", help="build or deploy the Gradio demo as a Hugging Face Space")
    space_commands = space.add_subparsers(dest="space_command", required=True)
    build = space_commands.add_parser("build", help="write a self-contained Space folder",
                                      description="Example: python -m emotion_core space build dist/space")
    build.add_argument("dir", help="folder to create (must be new or empty)")
    build.add_argument("--space-id", default="user/emotion", help="the Space's id, used in its README's API example")
    build.set_defaults(func=cmd_space_build)
    deploy = space_commands.add_parser("deploy", help="build, create the Space and upload it",
                                       description="Example: python -m emotion_core space deploy --space-id you/emotion. "
                                                   "Token from HF_TOKEN or `hf auth login`.")
    deploy.add_argument("--space-id", required=True, help="USER/NAME of the Space to create or update")
    deploy.add_argument("--private", action="store_true", help="create the Space as private")
    deploy.set_defaults(func=cmd_space_deploy)
    for sub in (build, deploy):
        sub.add_argument("--model-id", help="serve this Hub model (set as EMOTION_MODEL) instead of bundling the model files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        args.train_flags = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configure_hub()
    try:
        args.func(args)
    except (EmotionCoreError, OSError) as exc:  # bad input, a missing folder, a full disk: one line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
