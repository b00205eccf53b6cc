"""Whole documents: a text longer than the model's window is read sentence by sentence, not cut.

The model was trained on texts of at most `max_length` tokens; anything after that used to be
dropped silently, so a long review whose last sentence is "I am furious." read as its first
sentences did. A longer text is now split into sentences (syntok, a rule-based splitter that
knows abbreviations and paragraph breaks), a "sentence" still too long for the window into
overlapping windows of words, and every piece is scored in one batched call. The pieces are
combined so that neutral sentences do not dilute an emotional one:

- with a `neutral` label, the document is neutral only when every piece is: its neutral
  probability is the smallest of any piece's, and the rest is shared among the emotions of the
  pieces that carry one, each piece counting by its emotional strength (1 − p_neutral) to the
  power EMOTION_WEIGHT, so that one clearly emotional sentence outweighs several that a
  comment's small talk makes barely so (the power was chosen on validation documents:
  docs/real-world-text.md);
- without one, each piece counts by its confidence (its top probability).

A text that fits the window is still scored whole, as the model was trained; its sentences'
results are extra information (`Classifier.analyze`).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .labels import NEUTRAL
from .language import ENGLISH, not_english_message

WORD = re.compile(r"\S+")
STOPS, CLOSING = ".!?", "\"')]"  # what ends a sentence, and what may follow it in the same word
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "fig", "no", "vol", "approx", "dept", "est",
                 "inc", "ltd", "co", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
EMOTION_WEIGHT = 8  # the power of an emotional piece's strength in `combine`, chosen on validation documents
WINDOW_OVERLAP = 0.5  # share of a window that the next one repeats, so no phrase is only ever seen cut in two


@dataclass
class Sentence:
    """One piece of a document: where it is in the text, its language, and every label's probability for it (none
    when the model does not read its language)."""

    text: str
    start: int  # character offsets into the document
    end: int
    probabilities: dict[str, float]  # highest first
    language: str = ENGLISH

    @property
    def label(self) -> str | None:
        """The piece's most probable label; None when it was not read."""
        return next(iter(self.probabilities), None)

    def as_dict(self) -> dict:
        """The JSON shape every API returns."""
        return {"text": self.text, "start": self.start, "end": self.end, "emotion": self.label,
                "language": self.language, "probabilities": self.probabilities}


@dataclass
class Document:
    """A text's probabilities and its sentences'. `whole`: the text fit the window and was scored as one.
    A text whose language the model does not read has neither (`message` says why)."""

    probabilities: dict[str, float]  # highest first
    sentences: list[Sentence]
    whole: bool
    language: str = ENGLISH

    @property
    def label(self) -> str | None:
        """The document's most probable label; None when it was not read."""
        return next(iter(self.probabilities), None)

    @property
    def message(self) -> str | None:
        """Why the text has no emotion, in words for people; None when it has one."""
        return None if self.probabilities else not_english_message(self.language)

    def as_dict(self) -> dict:
        """The JSON shape every API returns."""
        return {"emotion": self.label, "language": self.language, "probabilities": self.probabilities,
                **({"message": self.message} if self.message else {}), "whole": self.whole,
                "sentences": [sentence.as_dict() for sentence in self.sentences]}


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence, in order; none without a word (" . ", "!!!")."""
    import syntok.segmenter as segmenter

    spans = []
    for paragraph in segmenter.analyze(sentence_case(text)):
        for sentence in paragraph:
            tokens = list(sentence)
            if tokens:
                spans.append((tokens[0].offset, tokens[-1].offset + len(tokens[-1].value)))
    return [(start, end) for start, end in spans if has_words(text[start:end])]


def sentence_case(text: str) -> str:
    """The text with a capital after each sentence end, offsets unchanged.

    syntok takes a full stop before a lower-case word for an abbreviation, and much of what
    people type (the emotion data set, chat, comments) is lower case: "i am sad. i am lonely".
    A word after "!" or "?", or after a full stop that ends a word of two letters or more that is
    no known abbreviation, gets a capital (ASCII only, so no offset moves). Word by word, in one
    pass, so a long run of stops costs what any text of its length does (a regular expression
    that backtracks there holds every thread of a server for minutes).
    """
    chars = list(text)
    words = list(WORD.finditer(text))
    for word, following in zip(words, words[1:]):
        first = following.group()[0]
        if "a" <= first <= "z" and ends_sentence(word.group()):
            chars[following.start()] = first.upper()
    return "".join(chars)


def ends_sentence(word: str) -> bool:
    """True when a word (as split by whitespace) ends a sentence: see `sentence_case`."""
    core = word.rstrip(CLOSING)
    bare = core.rstrip(STOPS) or core[:1]  # "!!" is a stop after a stop
    stops = core[len(bare):]
    bare = bare.lower().strip("\"'([")
    return bool(stops) and ("!" in stops or "?" in stops or ("." not in bare and len(bare) > 1 and bare not in ABBREVIATIONS))


def has_words(text: str) -> bool:
    """True when the text has a letter, a digit or an emoji (anything beyond ASCII punctuation and space)."""
    return any(char.isalnum() or not char.isascii() for char in text)


def word_windows(text: str, start: int, end: int, token_counts: Callable[[list[str]], list[int]],
                 budget: int, overlap: float = WINDOW_OVERLAP) -> list[tuple[int, int]]:
    """Split text[start:end] into windows of whole words of at most `budget` tokens, each repeating
    `overlap` of the last.

    A single word longer than the budget is a window of its own (the tokenizer cuts it).
    """
    words = [(start + m.start(), start + m.end()) for m in WORD.finditer(text[start:end])]
    counts = token_counts([text[a:b] for a, b in words])
    windows, first = [], 0
    while first < len(words):
        last, used = first, counts[first]
        while last + 1 < len(words) and used + counts[last + 1] <= budget:
            last += 1
            used += counts[last]
        windows.append((words[first][0], words[last][1]))
        if last == len(words) - 1:
            break
        step, repeated = last + 1, 0  # the next window starts so that it repeats at most `overlap` of this one
        while step - 1 > first and repeated + counts[step - 1] <= used * overlap:
            step -= 1
            repeated += counts[step]
        first = step
    return windows


def pieces(text: str, token_counts: Callable[[list[str]], list[int]], budget: int,
           overlap: float = WINDOW_OVERLAP) -> list[tuple[int, int]]:
    """The document's sentences, each one longer than `budget` tokens replaced by its word windows."""
    spans = sentence_spans(text) or [(0, len(text))]
    sizes = token_counts([text[a:b] for a, b in spans])
    out = []
    for (start, end), size in zip(spans, sizes):
        out += [(start, end)] if size <= budget else word_windows(text, start, end, token_counts, budget, overlap)
    return out


def combine(probs: np.ndarray, labels: list[str]) -> np.ndarray:
    """One document's probabilities from its pieces' (pieces × labels, calibrated)."""
    if NEUTRAL not in labels:
        weights = probs.max(axis=1)
        return (weights[:, None] * probs).sum(axis=0) / weights.sum()
    neutral = labels.index(NEUTRAL)
    emotional = probs.argmax(axis=1) != neutral
    if not emotional.any():
        return probs.mean(axis=0)  # every piece is neutral: so is their mean, and the document
    weights = (1.0 - probs[emotional, neutral]) ** EMOTION_WEIGHT
    mass = (weights[:, None] * probs[emotional]).sum(axis=0)
    mass[neutral] = 0.0
    out = (1.0 - probs[:, neutral].min()) * mass / mass.sum()
    out[neutral] = probs[:, neutral].min()
    return out
