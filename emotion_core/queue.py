"""The review queue: the order in which people should label a file's rows, so that the first corrections teach
the model the most. Every order needs the texts and the model's calibrated probabilities alone (any engine's
answers will do); docs/feedback.md compares them.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import EmotionCoreError
from .model_folder import atomic_file


def margin(probabilities: np.ndarray) -> np.ndarray:
    """How sure the model is of each row: the gap between its two most probable labels (calibrated), 0 to 1."""
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def word_vectors(texts: list[str]):
    """The texts' TF-IDF (words and word pairs), what `typicality` and `topics` compare texts by; None when not one
    text has a word."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)).fit_transform(texts)
    except ValueError:  # an empty vocabulary
        return None


TYPICAL_NEIGHBOURS = 10
TYPICAL_SAMPLE = 2_000  # the rows a text is compared with: a seeded sample keeps a 50,000-row file to seconds


def typicality(texts: list[str], neighbours: int = TYPICAL_NEIGHBOURS, sample: int = TYPICAL_SAMPLE) -> np.ndarray:
    """How typical each text is of the others (0 to 1): its mean cosine similarity (TF-IDF of words and word pairs)
    to its nearest neighbours among a seeded sample of the texts, itself left out. Any engine's queue can have it:
    it needs the texts alone, no embeddings from the model. A file with no shared word gives every text 1."""
    from sklearn.neighbors import NearestNeighbors

    reference = np.random.default_rng(0).permutation(len(texts))[:sample]
    k = min(neighbours, len(reference) - 1)
    vectors = word_vectors(texts)
    if vectors is None or k < 1:
        return np.ones(len(texts))
    distances, found = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vectors[reference]).kneighbors(vectors)
    itself = reference[found] == np.arange(len(texts))[:, None]
    itself[~itself.any(axis=1), -1] = True  # a text outside the sample drops its farthest neighbour instead
    return (1 - distances[~itself].reshape(len(texts), k)).mean(axis=1)


def density_keys(texts: pd.Series, margins: pd.Series) -> pd.Series:
    """Each row's key (smallest first) for the least sure among the most typical texts: how unsure the model is
    (1 - margin) times how typical the text is of the file (`typicality`). By margin alone, the first rows are
    the odd texts between two answers, whose corrections teach little about the rest; weighed by how typical they
    are, each correction stands for many texts like it (information density, Settles and Craven 2008). Unscored
    rows (NaN margin) get no key."""
    scored = margins.notna()
    keys = pd.Series(np.nan, index=margins.index)
    keys[scored] = -(1 - margins[scored]) * typicality(texts[scored].tolist())
    return keys


def balanced_places(predicted: pd.Series, keys: pd.Series) -> pd.Series:
    """Each row's place (0 to 1) in a queue that takes the model's answers in proportion to how often it gives
    them, the smallest key (a margin, say) of each answer first: any first rows a person labels cover every
    answer the model gives, as a random draw would, and still the most uncertain of each."""
    groups = keys.groupby(predicted)
    return (groups.rank(method="first") - 0.5) / groups.transform("size")


def text_vectors(texts: list[str], dimensions: int = 100) -> np.ndarray | None:
    """The texts' TF-IDF (`word_vectors`) reduced to `dimensions` by latent semantic analysis, each of length 1: what
    `topics` groups texts by. None when the texts share too few words to reduce."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    vectors = word_vectors(texts)
    if vectors is None or vectors.shape[1] < 3:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):  # texts all alike have no variance to explain
        return normalize(TruncatedSVD(min(dimensions, vectors.shape[1] - 1), random_state=0).fit_transform(vectors))


def topics(texts: list[str]) -> np.ndarray:
    """Each text's topic, one of about the square root of the file's rows: k-means (seeded) on `text_vectors`. Like
    `typicality`, it needs the texts alone. A file with no shared word is one topic."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    k = round(len(texts) ** 0.5)
    vectors = text_vectors(texts) if k >= 2 else None
    if vectors is None:
        return np.zeros(len(texts), dtype=int)
    with warnings.catch_warnings():  # a file of fewer distinct texts than topics is fine: some topics stay empty
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(k, n_init=3, random_state=0).fit_predict(vectors)


QUEUE_ORDERS = {  # each order, as the review tab offers it (docs/feedback.md measures them)
    "topics": "Each topic in proportion, the least sure of its typical texts first",
    "margin": "The least sure first",
    "density": "Each answer in proportion, the least sure of its typical texts first",
    "balanced": "Each answer in proportion, the least sure first",
}
DEFAULT_ORDER = "topics"


def queue_order(order: str, predicted: pd.Series, texts: pd.Series, margins: pd.Series) -> np.ndarray:
    """The scored rows' positions in one of QUEUE_ORDERS (see `review_queue`), ties by the smaller margin."""
    if order == "margin":
        keys = margins
    elif order == "balanced":
        keys = balanced_places(predicted, margins)
    elif order == "density":
        keys = balanced_places(predicted, density_keys(texts, margins))
    else:
        keys = balanced_places(pd.Series(topics(texts.tolist()), index=texts.index), density_keys(texts, margins))
    return np.lexsort((margins, keys))


def review_queue(input_path: str | Path, output_path: str | Path, classifier, text_column: str | None = None,
                 max_rows: int | None = None, order: str = DEFAULT_ORDER, encoding: str = "utf-8-sig",
                 corrected: dict[str, str] | None = None):
    """Score a CSV and write its rows in the order people should label them: `topics` (`balanced_places` by
    `topics` on `density_keys`: the file's topics in proportion, the least sure among the most typical texts of
    each first), `density` (as topics, by the model's answers instead of topics), `balanced` (`balanced_places` by
    answer on the margin) or `margin` (smallest margin first); the rows left unscored (empty texts) last;
    `score`'s summary. With `corrected` (text -> label, as `feedback.corrected_texts` reads a store), a column of
    that name holds each row's stored label, and those rows come after the rest, which are queued on their own:
    the next round of a file queued again by a retrained model asks only for what nobody has labelled. The whole
    file is held in memory: a queue is for people to read (the apps cap it with `max_rows`)."""
    from .batch import check_paths, score_csv

    if order not in QUEUE_ORDERS:
        raise EmotionCoreError(f"Unknown queue order {order!r}: use one of {', '.join(QUEUE_ORDERS)}.")
    out = Path(output_path)
    check_paths(Path(input_path), out)  # score_csv below sees the temporary file, not `out`
    with atomic_file(out) as scored:
        summary = score_csv(input_path, scored, classifier, text_column=text_column, encoding=encoding, progress=False,
                            max_rows=max_rows)
        frame = pd.read_csv(scored, dtype=str, keep_default_na=False)
        probs = frame[[f"prob_{label}" for label in classifier.labels]].replace("", np.nan).astype(float).to_numpy()
        frame["margin"] = np.round(margin(probs), 4)  # a queue queued again gets new margins
        queued = frame["margin"].notna().to_numpy()
        if corrected is not None:
            frame["corrected"] = [corrected.get(text, "") for text in frame[summary.text_column]]
            queued = queued & (frame["corrected"] == "").to_numpy()
            summary.corrected = int((frame["corrected"] != "").sum())
        rows, rest = np.flatnonzero(queued), np.flatnonzero(~queued)
        part = frame.iloc[rows].reset_index(drop=True)
        rest = rest[np.argsort(frame["margin"].iloc[rest].isna().to_numpy(), kind="stable")]  # corrected, then unscored
        places = rows[queue_order(order, part["emotion"], part[summary.text_column], part["margin"])]
        frame.iloc[np.concatenate([places, rest])].to_csv(scored, index=False)
    summary.output = out
    return summary
