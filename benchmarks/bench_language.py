"""The language step: how often it says "not English" of other languages, and of English, and what it costs.

    $ python -m benchmarks.bench_language                    # measured: non_english.tsv, the validation splits, plain statements
    $ python -m benchmarks.bench_language --split tuning     # the sets its thresholds were chosen on (the train splits)
    $ python -m benchmarks.bench_language --split tuning --compare   # each identifier alone (pip install cld3-py pycld2 py3langid)
    $ python -m benchmarks.bench_language --split tuning --grid      # the language step's two thresholds, as they were chosen

Other languages: sentences written for this project in 24 languages (benchmarks/data/non_english.tsv;
non_english_tuning.tsv holds others, in 32 languages, for tuning), a third of them 3 to 6 words.
English: every text of the three sources' validation splits (train splits for tuning) and the
plain statements. Time: the step's median time per text over `--rounds` passes of each set,
beside the model's own (the default engine over the emotion validation texts).

`--compare` runs each identifier alone on the tuning sets, saying "not English" whenever its top
language is another at any probability of at least each threshold: how it trades the two errors.
`--grid` runs the language step with each pair of its thresholds (fastText's SURE, lingua's
CONFIRM): the rule that chose them is in docs/real-world-text.md#other-languages.
"""

import argparse
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.common import PLAIN_STATEMENTS, machine, plain_statements, test_split
from emotion_core.language import ENGLISH, detect_languages
from tests.helpers import SHARED_DATA

DATA = Path(__file__).resolve().parent / "data"
SPLITS = {"measured": ("non_english.tsv", "validation"), "tuning": ("non_english_tuning.tsv", "train")}
SHORT_WORDS = 6  # a sentence of at most this many words (characters / 2 for Chinese, Japanese and Thai) is short
NO_SPACES = {"zh", "ja", "th"}


def english_sets(split: str) -> dict[str, list[str]]:
    """The texts of each source's split (validation or train), all of them English."""
    emotion = {"validation": "val.txt", "train": "train.txt"}[split]
    goemotions = {"validation": "dev.tsv", "train": "train.tsv"}[split]
    tweets = {"validation": "val_text.txt", "train": "train_text.txt"}[split]
    sets = {"emotion": [line.rsplit(";", 1)[0] for line in (SHARED_DATA / "emotion" / emotion).read_text().splitlines()],
            "goemotions": [line.split("\t")[0] for line in (SHARED_DATA / "goemotions" / goemotions).read_text().splitlines()],
            "tweeteval": (SHARED_DATA / "tweeteval" / tweets).read_text().splitlines()}
    if split == "validation":
        sets[f"plain statements ({PLAIN_STATEMENTS.name})"] = plain_statements()
    return sets


def other_languages(name: str) -> list[tuple[str, str]]:
    """(ISO 639-1 code, sentence) rows of a file of sentences in other languages."""
    lines = [line for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return [tuple(line.split("\t")) for line in lines[1:]]


def is_short(code: str, text: str) -> bool:
    """A sentence of a few words."""
    return len(text) <= 2 * SHORT_WORDS if code in NO_SPACES else len(text.split()) <= SHORT_WORDS


def per_text_us(texts: list[str], rounds: int) -> float:
    """The language step's median time per text, in microseconds (after one untimed pass that loads what it needs)."""
    detect_languages(texts)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        detect_languages(texts)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(texts) * 1e6


def model_per_text_us(rounds: int) -> float:
    """The default engine's median time per text over the emotion validation texts, in microseconds."""
    from emotion_core import Classifier

    texts, _ = test_split("validation")
    classifier = Classifier.from_pretrained()
    classifier.predict_proba(texts)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        classifier.predict_proba(texts)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(texts) * 1e6


def report(split: str, rounds: int) -> None:
    """The tables for one split: other languages per language, English per source, time per text."""
    foreign_file, english_split = SPLITS[split]
    rows = other_languages(foreign_file)
    said = detect_languages([text for _, text in rows])
    by_language, short, wrong = defaultdict(list), defaultdict(list), Counter()
    for (code, text), found in zip(rows, said):
        by_language[code].append(found != ENGLISH)
        if is_short(code, text):
            short[code].append(found != ENGLISH)
        if found not in (ENGLISH, code):
            wrong[code] += 1
    print(f"\n### Other languages ({foreign_file}): said not English\n")
    print("| language | sentences | said not English | short (3-6 words) | said not English | named as another language |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for code in sorted(by_language, key=lambda c: (sum(by_language[c]) / len(by_language[c]), c)):
        found, few = by_language[code], short[code]
        print(f"| {code} | {len(found)} | {sum(found) / len(found):.1%} | {len(few)} | "
              f"{sum(few) / len(few) if few else float('nan'):.1%} | {wrong[code]} |")
    every = [x for found in by_language.values() for x in found]
    few = [x for found in short.values() for x in found]
    print(f"| **all {len(by_language)}** | {len(every)} | **{sum(every) / len(every):.1%}** | {len(few)} | "
          f"{sum(few) / len(few):.1%} | {sum(wrong.values())} |")
    print(f"\n### English ({english_split} splits): said not English\n")
    print("| source | texts | said not English | share |")
    print("| --- | ---: | ---: | ---: |")
    sets = english_sets(english_split)
    for name, texts in sets.items():
        flagged = [text for text, found in zip(texts, detect_languages(texts)) if found != ENGLISH]
        print(f"| {name} | {len(texts):,} | {len(flagged)} | {len(flagged) / len(texts):.2%} |")
    print("\n### Time per text (median of rounds)\n")
    print("| texts | language step, µs per text |")
    print("| --- | ---: |")
    for name, texts in [*sets.items(), (foreign_file, [text for _, text in rows])]:
        print(f"| {name} | {per_text_us(texts, rounds):.0f} |")
    print(f"| the model itself (default engine, emotion validation texts) | {model_per_text_us(rounds):.0f} |")


def identifiers() -> dict:
    """Each identifier alone, as a function from a text to its (top language, probability); those not installed left out."""
    from emotion_core.language import identifier, lingua_languages

    found = {"fastText lid.176 (compressed)": lambda text: next((r["lang"], r["score"]) for r in identifier().detect(text, k=1))}
    from lingua import LanguageDetectorBuilder

    codes = {language: code for code, language in lingua_languages().items()}
    lingua = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

    def lingua_top(text):
        values = lingua.compute_language_confidence_values(text)
        return (codes[values[0].language], values[0].value) if values else (ENGLISH, 1.0)
    found["lingua (high accuracy)"] = lingua_top
    try:
        import gcld3

        cld3 = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
        found["CLD3"] = lambda text: (cld3.FindLanguage(text).language.split("-")[0], cld3.FindLanguage(text).probability)
    except ImportError:
        print("CLD3 left out: pip install cld3-py")
    try:
        import pycld2

        def cld2(text):
            try:
                details = pycld2.detect(text)[2]
            except pycld2.error:
                return ENGLISH, 0.0
            return details[0][1] if details[0][1] != "un" else ENGLISH, details[0][2] / 100
        found["CLD2"] = cld2
    except ImportError:
        print("CLD2 left out: pip install pycld2")
    try:
        from py3langid.langid import _load_identifier

        langid = _load_identifier(norm_probs=True)
        found["langid.py (py3langid)"] = lambda text: tuple(langid.classify(text))
    except ImportError:
        print("langid.py left out: pip install py3langid")
    return found


def compare(split: str) -> None:
    """Each identifier alone on the split's sets: not-English recall and English texts said not English, by threshold."""
    foreign_file, english_split = SPLITS[split]
    foreign = [text for _, text in other_languages(foreign_file)]
    sets = english_sets(english_split)
    print(f"\n### Each identifier alone ({foreign_file}; English: the {english_split} splits)\n")
    print("| identifier | µs per text | threshold | other languages said not English | "
          + " | ".join(f"{name} said not English" for name in sets) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in sets) + " |")
    for name, top in identifiers().items():
        start = time.perf_counter()
        answers = {"foreign": [top(text) for text in foreign]} | {s: [top(text) for text in texts] for s, texts in sets.items()}
        us = (time.perf_counter() - start) / sum(map(len, answers.values())) * 1e6
        for threshold in (0.0, 0.3, 0.5, 0.7, 0.9):
            share = {s: sum(code != ENGLISH and p >= threshold for code, p in found) / len(found) for s, found in answers.items()}
            print(f"| {name} | {us:.0f} | {threshold} | {share['foreign']:.1%} | "
                  + " | ".join(f"{share[s]:.2%}" for s in sets) + " |")


def grid(split: str) -> None:
    """The language step with each pair of thresholds: other languages said not English (all, and the worst of the
    languages the measured set holds), and each English source's texts said not English."""
    from emotion_core import language

    foreign_file, english_split = SPLITS[split]
    rows, sets = other_languages(foreign_file), english_sets(english_split)
    measured = {code for code, _ in other_languages(SPLITS["measured"][0])}
    print(f"\n### The language step's thresholds ({foreign_file}; English: the {english_split} splits)\n")
    print("| SURE (fastText) | CONFIRM (lingua) | other languages said not English | worst of the measured set's languages | "
          + " | ".join(f"{name} said not English" for name in sets) + " |")
    print("| ---: | ---: | ---: | --- | " + " | ".join("---:" for _ in sets) + " |")
    chosen = language.SURE, language.CONFIRM
    for sure in (0.1, 0.2, 0.3):
        for confirm in (0.3, 0.5, 0.7):
            language.SURE, language.CONFIRM = sure, confirm
            said = [found != ENGLISH for found in detect_languages([text for _, text in rows])]
            by_language = defaultdict(list)
            for (code, _), found in zip(rows, said):
                by_language[code].append(found)
            worst = min((sum(v) / len(v), code) for code, v in by_language.items() if code in measured)
            shares = [sum(found != ENGLISH for found in detect_languages(texts)) / len(texts) for texts in sets.values()]
            mark = " (shipped)" if (sure, confirm) == chosen else ""
            print(f"| {sure}{mark} | {confirm} | {sum(said) / len(said):.1%} | {worst[1]} {worst[0]:.0%} | "
                  + " | ".join(f"{share:.2%}" for share in shares) + " |", flush=True)
    language.SURE, language.CONFIRM = chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, default="measured", help="the sets to measure on (default: measured)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over each set")
    parser.add_argument("--compare", action="store_true", help="each identifier alone, instead of the language step")
    parser.add_argument("--grid", action="store_true", help="the language step with each pair of its thresholds")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.compare:
        compare(args.split)
    elif args.grid:
        grid(args.split)
    else:
        report(args.split, args.rounds)


if __name__ == "__main__":
    main()
