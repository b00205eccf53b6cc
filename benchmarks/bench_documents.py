"""Whole documents: is an emotion buried in a long text found, and is reading a long text as fast per token?

    $ python -m benchmarks.bench_documents                                  # the bundled model
    $ python -m benchmarks.bench_documents --models bundled runs/previous   # beside another model folder
    $ python -m benchmarks.bench_documents --split validation --emotion-weights 1 2 4 8   # how the weight was chosen

Buried emotion: each of --texts labelled texts (half from the emotion test split, or with
--split validation its validation split; half GoEmotions dev rows with one of the six labels)
is placed at a random position among 6-10 neutral GoEmotions dev comments, 150-400 tokens in all
(seeded). The share of documents whose emotion is the text's label, read whole (sentence by
sentence) against the first window only (the truncation the model used before). Two emotions:
two labelled texts with different labels among the neutral comments; the share of documents
whose sentence results show both.

Alone: the labelled texts scored on their own, the ceiling for finding them in a document.
Where documents miss: how often a text read right alone is lost in its document, and how many of
the neutral comments' sentences the model reads as an emotion (each competes with the text).
--emotion-weights: the buried-emotion figure with other powers of documents.EMOTION_WEIGHT.

Speed (the first model, its default engine): tokens per second (the text's own tokens, no special
tokens) scoring the buried documents, against scoring the same documents' sentences as short
texts, and against the emotion test texts, medians of --rounds rounds (the three take turns), with the share of inputs
the int8 engine scores again in fp32 for being near a tie (none of a document's pieces when
its sentences' results are not asked for); how many documents' labels are fp32's, so read and
with the pieces rescored; and one single-sentence
text, p50 of 200 calls, through `predict` against the truncating path it replaced; and one text
of about 10,000 characters, predicted and explained.
"""

import argparse
import random
import statistics
import time

import numpy as np

from benchmarks.common import goemotions_dev, load_models, machine, test_split
from emotion_core import Classifier, documents
from emotion_core.engines import GuardedEngine, top_two_gap
from emotion_core.explain import explain
from emotion_core.labels import NEUTRAL
from emotion_core.sources import SIX

MIN_TOKENS, MAX_TOKENS = 150, 400
LATENCY_CALLS = 200


def sentence(text: str) -> str:
    """The text ending in a full stop unless it ends a sentence already (the emotion data set has no punctuation)."""
    text = text.strip()
    return text if text[-1] in ".!?" else text + "."


def build_documents(classifier, labelled: list[tuple[str, str]], fillers: list[str], per_document: int,
                    seed: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """(document, its labelled texts): `per_document` labelled texts at random places among 6-10 neutral
    comments, 150-400 tokens in all (fillers drawn again until the length fits)."""
    rng, documents = random.Random(seed), []
    for start in range(0, len(labelled) - per_document + 1, per_document):
        chosen = labelled[start:start + per_document]
        for _ in range(100):
            parts = [sentence(t) for t in rng.sample(fillers, rng.randint(6, 10))]
            for text, _ in chosen:
                parts.insert(rng.randint(0, len(parts)), sentence(text))
            document = " ".join(parts)
            if MIN_TOKENS <= len(classifier.encode([document], truncate=False)[0]) <= MAX_TOKENS:
                documents.append((document, chosen))
                break
    return documents


def labelled_texts(n: int, seed: int, split: str = "test") -> list[tuple[str, str]]:
    """n labelled texts, half the emotion split's, half GoEmotions dev rows of the six, shuffled (seeded)."""
    rng = random.Random(seed)
    texts, labels = test_split(split)
    emotion = rng.sample(list(zip(texts, labels)), n - n // 2)
    goemotions = rng.sample([(t, label) for t, label in goemotions_dev() if label in SIX], n // 2)
    both = emotion + goemotions
    rng.shuffle(both)
    return both


def buried(classifier, documents) -> tuple[float, float]:
    """Share of one-emotion documents whose emotion is the buried text's, read whole and cut at the window."""
    texts, labels = [d for d, _ in documents], np.array([chosen[0][1] for _, chosen in documents])
    whole = np.asarray(classifier.labels)[classifier.predict_proba(texts).argmax(axis=1)]
    cut = np.asarray(classifier.labels)[classifier.logits(texts).argmax(axis=1)]
    return float((whole == labels).mean()), float((cut == labels).mean())


def both_found(classifier, documents) -> float:
    """Share of two-emotion documents whose sentence results include both labels."""
    found = [{label for _, label in chosen} <= {s.label for s in doc.sentences}
             for doc, (_, chosen) in zip(classifier.analyze([d for d, _ in documents]), documents)]
    return float(np.mean(found))


def misses(classifier, documents) -> tuple[float, float, float]:
    """Why buried texts are missed. Of the documents whose text, scored alone, is read right: the share read
    wrong whole. Of all: the share with a neutral comment's sentence read as an emotion, and how many per document."""
    texts = [chosen[0] for _, chosen in documents]
    alone = classifier.predict_proba([text for text, _ in texts]).argmax(axis=1)
    wrong, competing = [], []
    for (document, _), (text, label), guess, read in zip(documents, texts, alone, classifier.analyze([d for d, _ in documents])):
        start = document.find(sentence(text))
        end = start + len(sentence(text))
        competing.append(sum(s.label != NEUTRAL for s in read.sentences if s.end <= start or s.start >= end))
        if classifier.labels[guess] == label:
            wrong.append(read.label != label)
    return float(np.mean(wrong)), float(np.mean([n > 0 for n in competing])), float(np.mean(competing))


def seconds(call, rounds: int) -> float:
    """Median wall time of `rounds` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tokens_per_second(classifier, sets: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """Median tokens (the texts' own, without special tokens) per second of predict_proba over each set of texts,
    the sets taking turns in each round so that a slower spell of the machine falls on all of them."""
    times = {name: [] for name in sets}
    for _ in range(rounds):
        for name, texts in sets.items():
            times[name].append(seconds(lambda texts=texts: classifier.predict_proba(texts), 1))
    return {name: sum(classifier.token_counts(texts)) / statistics.median(times[name]) for name, texts in sets.items()}


def rescored(classifier, ids: list[list[int]], engine=None) -> str:
    """The share of these inputs the engine (the classifier's by default) scores twice: int8 first, then fp32 where
    int8's top two are near a tie (engines.GuardedEngine); "none" for an engine that does not."""
    engine = engine or classifier.engine
    guarded = getattr(engine, "shared", engine)
    if not isinstance(guarded, GuardedEngine):
        return "none"
    scores = classifier.logits_of_ids(ids, engine=guarded.fast)
    return f"{np.mean(top_two_gap(scores) < guarded.margin):.1%}"


def fp32_agreement(classifier, docs: list[str]) -> tuple[float, float] | None:
    """The share of documents whose label is fp32's: read as predict reads them (pieces scored in int8 alone), and
    with the pieces near a tie rescored in fp32 (as analyze scores them, which shows them); None without int8."""
    if classifier.document_engine is classifier.engine:
        return None
    reference = Classifier.from_pretrained(classifier.source, engine="onnx").predict_proba(docs).argmax(axis=1)
    guarded = [classifier.labels.index(document.label) for document in classifier.analyze(docs)]
    return float(np.mean(classifier.predict_proba(docs).argmax(axis=1) == reference)), float(np.mean(guarded == reference))


def one_text_ms(classifier, text: str) -> tuple[float, float]:
    """p50 ms of one text through `predict`, and through the truncating path it replaced, interleaved."""
    def before():
        return classifier.to_dict(classifier.calibration.probabilities(classifier.logits([text]))[0])

    now, then = [], []
    for _ in range(LATENCY_CALLS):
        for call, times in ((lambda: classifier.predict(text), now), (before, then)):
            start = time.perf_counter()
            call()
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(now), statistics.median(then)


def long_text(fillers: list[str], seed: int, chars: int = 10_000) -> str:
    """About `chars` characters of neutral comments (seeded), then one furious sentence."""
    rng, parts = random.Random(seed), []
    while sum(len(p) + 1 for p in parts) < chars:
        parts.append(sentence(rng.choice(fillers)))
    return " ".join(parts) + " I am furious."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bundled"], help="'bundled' and/or model folders")
    parser.add_argument("--texts", type=int, default=600, help="labelled texts to bury (at least 500 for the issue's figure)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (medians)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test", choices=("test", "validation"), help="the emotion split to bury")
    parser.add_argument("--emotion-weights", type=int, nargs="*", default=[],
                        help="also the buried figure with these EMOTION_WEIGHT powers (and no speed figures)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    models = load_models(args.models)
    first = next(iter(models.values()))
    fillers = [t for t, label in goemotions_dev() if label == "neutral"]
    labelled = labelled_texts(args.texts, args.seed, args.split)
    one = build_documents(first, labelled, fillers, 1, args.seed)
    pairs = [(a, b) for a, b in zip(labelled[::2], labelled[1::2]) if a[1] != b[1]]
    two = build_documents(first, [x for pair in pairs for x in pair], fillers, 2, args.seed + 1)
    lengths = [len(first.encode([d], truncate=False)[0]) for d, _ in one]
    print(f"\n{len(one)} documents with one labelled text, {len(two)} with two of different labels; "
          f"{min(lengths)}-{max(lengths)} tokens (median {statistics.median(lengths):.0f}); seed {args.seed}\n")
    print("| model | engine | buried emotion found, whole document | first window only | the labelled texts alone | "
          "both of two emotions in the sentences |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, classifier in models.items():
        whole, cut = buried(classifier, one)
        alone = classifier.predict_proba([t for t, _ in labelled]).argmax(axis=1)
        alone = float(np.mean([classifier.labels[i] == label for i, (_, label) in zip(alone, labelled)]))
        print(f"| {name} | {classifier.engine.name} | {whole:.1%} | {cut:.1%} | {alone:.1%} | {both_found(classifier, two):.1%} |")
    print("\nWhere whole documents miss:\n\n| model | text alone right, document wrong | documents with a neutral comment's "
          "sentence read as an emotion | such sentences per document |\n| --- | ---: | ---: | ---: |")
    for name, classifier in models.items():
        lost, any_competing, competing = misses(classifier, one)
        print(f"| {name} | {lost:.1%} | {any_competing:.1%} | {competing:.2f} |")
    for weight in args.emotion_weights:
        documents.EMOTION_WEIGHT = weight
        print(f"\n{next(iter(models))}, EMOTION_WEIGHT {weight}: buried emotion found {buried(first, one)[0]:.1%}")
    if args.emotion_weights:
        return
    docs = [d for d, _ in one]
    sentences = [text[a:b] for text, found in zip(docs, first.split(docs, [False] * len(docs))[0]) for a, b in found]
    short, _ = test_split()
    speeds = tokens_per_second(first, {"docs": docs, "sentences": sentences, "short": short}, args.rounds)
    now, then = one_text_ms(first, short[0])
    print(f"\nSpeed ({args.models[0]}, {first.engine.name}, medians of {args.rounds} rounds):\n")
    piece_ids = first.split(docs, [False] * len(docs))[1]
    pieces, whole = rescored(first, piece_ids), rescored(first, first.encode(short))
    print("| what | tokens/s | documents × this | rescored in fp32 |\n| --- | ---: | ---: | ---: |")
    print(f"| buried documents (read sentence by sentence) | {speeds['docs']:,.0f} | 1.00 | "
          f"{rescored(first, piece_ids, first.document_engine)} |")
    print(f"| the same documents' sentences, each scored as a short text | {speeds['sentences']:,.0f} | "
          f"{speeds['docs'] / speeds['sentences']:.2f} | {pieces} |")
    print(f"| emotion test texts (short, scored whole) | {speeds['short']:,.0f} | {speeds['docs'] / speeds['short']:.2f} | {whole} |")
    agreement = fp32_agreement(first, docs)
    if agreement:
        print(f"\nDocument labels the same as fp32's (--engine onnx): {agreement[0]:.1%} as predict reads them (their "
              f"pieces in int8 alone), {agreement[1]:.1%} with pieces near a tie rescored in fp32 (as analyze does)")
    print(f"\nOne single-sentence text, p50 of {LATENCY_CALLS}: predict {now:.2f} ms, the truncating path it replaced "
          f"{then:.2f} ms ({now / then:.2f}×)")
    text = long_text(fillers, args.seed)
    print(f"\nOne text of {len(text):,} characters ({first.token_counts([text])[0]:,} tokens), medians of {args.rounds}: "
          f"predict {seconds(lambda: first.predict(text), args.rounds):.2f} s, "
          f"explain {seconds(lambda: explain(first, text), args.rounds):.2f} s; "
          f"answer {', '.join(f'{k} {v:.2f}' for k, v in list(first.predict(text).items())[:2])}")


if __name__ == "__main__":
    main()
