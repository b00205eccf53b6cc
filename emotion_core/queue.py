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
    `topics` and `spread` place texts by. None when the texts share too few words to reduce."""
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


SPREAD_ROWS = 2_000  # the rows `spread` places; each costs one pass over the file, and nobody labels more at a sitting


def spread(vectors: np.ndarray, rows: int = SPREAD_ROWS, seed: int = 0) -> np.ndarray:
    """The positions of up to `rows` rows in k-means++ seeding order (Arthur and Vassilvitskii 2007): each next row
    drawn (seeded) with odds in proportion to its squared distance from the nearest row already drawn. Any first
    rows are then spread over the file as a random draw is, in proportion to how common each kind of row is, but
    without a second row where one alike is drawn already (exact duplicates never). Stops early when only
    duplicates of drawn rows are left."""
    rng = np.random.default_rng(seed)
    lengths = (vectors ** 2).sum(axis=1)
    nearest = np.full(len(vectors), np.inf)
    drawn = [int(rng.integers(len(vectors)))] if len(vectors) else []
    while len(drawn) < min(rows, len(vectors)):
        last = drawn[-1]
        nearest = np.minimum(nearest, np.maximum(lengths + lengths[last] - 2 * vectors @ vectors[last], 0))
        if nearest.sum() <= 1e-12:
            break
        drawn.append(int(rng.choice(len(vectors), p=nearest / nearest.sum())))
    return np.array(drawn, dtype=int)


CLUSTER_ROWS = 3  # a cluster's rows on average in `clusters`: one correction stands for a few texts alike
COVER_ROWS = 2_000  # the rows `clusters` groups (a seeded sample of a larger file); nobody labels more at a sitting


def clusters(vectors: np.ndarray, keys: np.ndarray, size: int = CLUSTER_ROWS) -> np.ndarray:
    """The rows' positions in rounds over many small clusters (k-means, seeded, about `size` rows each): each round
    takes the next row of every cluster not yet used up, the largest clusters first, the smallest key first within a
    cluster. Any first rows are then one of each kind of row, the commonest kinds first, with no second row of a
    kind before every kind has one; and no odd row before the common ones, where k-means++ seeding (`spread`) is
    drawn to outliers. Typical rows of many small clusters are what works best when a model starts with few labels
    of a kind of text (TypiClust: Hacohen, Dekel and Weinshall 2022)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    if len(vectors) == 0:
        return np.zeros(0, dtype=int)
    with warnings.catch_warnings():  # fewer distinct rows than clusters is fine: some stay empty
        warnings.simplefilter("ignore", ConvergenceWarning)
        found = KMeans(max(1, round(len(vectors) / size)), n_init=1, random_state=0).fit_predict(vectors)
    groups = pd.DataFrame({"cluster": found, "key": keys}).groupby("cluster")["key"]
    return np.lexsort((found, -groups.transform("size").to_numpy(), groups.rank(method="first").to_numpy()))


def placed(texts: pd.Series, probabilities: np.ndarray) -> np.ndarray:
    """Where `spread` and `clusters` place each row: its text (`text_vectors`) beside the model's probabilities, or
    the probabilities alone when the texts share too few words."""
    words = text_vectors(texts.tolist())
    return probabilities if words is None else np.hstack([words, probabilities])


def first(margins: pd.Series, positions: np.ndarray) -> pd.Series:
    """Keys that put the rows at `positions` first, in that order, and the others after by margin."""
    keys = margins.copy()
    keys.iloc[positions] = np.arange(len(positions)) - len(positions)
    return keys


QUEUE_ORDERS = ("topics", "clusters", "spread", "density", "balanced", "margin")


def queue_order(order: str, predicted: pd.Series, texts: pd.Series, margins: pd.Series,
                probabilities: np.ndarray) -> np.ndarray:
    """The rows' positions in one of QUEUE_ORDERS (see `review_queue`): ties by the smaller margin, the rows
    left unscored (NaN margin) last."""
    scored = margins.notna()
    if order == "margin":
        keys = margins
    elif order == "balanced":
        keys = balanced_places(predicted, margins)
    elif order == "density":
        keys = balanced_places(predicted, density_keys(texts, margins))
    elif order == "spread":  # the rows `spread` leaves come after it, the least sure first
        rows = np.flatnonzero(scored.to_numpy())
        keys = first(margins, rows[spread(placed(texts.iloc[rows], probabilities[rows]))])
    elif order == "clusters":  # the rows of a larger file left out of the sample come after, the least sure first
        rows = np.sort(np.random.default_rng(0).permutation(np.flatnonzero(scored.to_numpy()))[:COVER_ROWS])
        keys = first(margins, rows[clusters(placed(texts.iloc[rows], probabilities[rows]),
                                            density_keys(texts.iloc[rows], margins.iloc[rows]).to_numpy())])
    else:
        found = pd.Series(-1, index=margins.index)
        found[scored] = topics(texts[scored].tolist())
        keys = balanced_places(found, density_keys(texts, margins))
    return np.lexsort((margins, keys.fillna(np.inf)))


def review_queue(input_path: str | Path, output_path: str | Path, classifier, text_column: str | None = None,
                 max_rows: int | None = None, order: str = "topics", encoding: str = "utf-8-sig"):
    """Score a CSV and write its rows in the order people should label them: `topics` (`balanced_places` by
    `topics` on `density_keys`: the file's topics in proportion, the least sure among the most typical texts of
    each first), `clusters` (`clusters` of `placed` rows on `density_keys`: one row of each small cluster, the
    largest first, then a second of each, ...), `spread` (`spread` on `placed` rows, then the
    least sure first), `density` (as topics, by the model's answers instead of topics), `balanced`
    (`balanced_places` by answer on the margin) or `margin` (smallest margin first); the rows left unscored (empty texts) last;
    `score`'s summary. The whole file is held in memory: a queue is for people to read (the apps cap it
    with `max_rows`)."""
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
        places = queue_order(order, frame["emotion"], frame[summary.text_column], frame["margin"], probs)
        frame.iloc[places].to_csv(scored, index=False)
    summary.output = out
    return summary
