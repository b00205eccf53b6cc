"""Text normalisation shared by training and inference, so the model sees the same kind of text in both.

The emotion data set is lower-cased and has no links or user names; Reddit comments (GoEmotions)
have links, `u/name` mentions and `[NAME]` where a person's name was masked. Social-media
writing carries much of its emotion in emoji, hashtags and elongations, which a WordPiece
vocabulary reads badly (most emoji become `[UNK]`, "#sofrustrated" and "sooooo" become pieces it
rarely saw). The steps map all of that onto one form:

| step          | what it does                                        | example                              |
| ------------- | --------------------------------------------------- | ------------------------------------ |
| `urls`        | links become `http`                                 | `see https://x.io/a` → `see http`    |
| `mentions`    | `@name`, `u/name` become `@user`                    | `u/bob` → `@user`                    |
| `names`       | GoEmotions' `[NAME]` becomes `someone`              |                                      |
| `emoji`       | emoji become their names (the `emoji` package's)    | `so angry 😡😡` → `so angry enraged face` |
| `hashtags`    | hashtags become their words (`wordsegment`)         | `#sofrustrated` → `so frustrated`    |
| `elongations` | letters repeated 3+ times shortened to a real word  | `sooooo good` → `so good`            |
| `lowercase`   | lower case                                          |                                      |
| `spaces`      | runs of white space become one space                |                                      |

Training saves the steps in the model folder (`normalization.json`) and `Classifier` reads them
back, so a model is always fed text the way it was trained; a folder trained before a step
existed keeps its own list and never gets the new step.
"""

import functools
import json
import re
from pathlib import Path

from .errors import EmotionCoreError
from .model_folder import NORMALIZATION, write_json

# step -> (pattern, replacement); the other steps are functions below
PATTERNS = {
    "urls": (re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE), "http"),
    "mentions": (re.compile(r"(?<![\w/])(?:/?[uU]/|@)(?!someone\b)[A-Za-z0-9_-]{2,}"), "@user"),  # not names' own
    "names": (re.compile(r"\[NAME\]"), "someone"),  # GoEmotions' mask for a person's name
}
STEPS = ("urls", "mentions", "names", "emoji", "hashtags", "elongations", "lowercase", "spaces")
DEFAULT_STEPS = STEPS

HASHTAG = re.compile(r"(?<![\w&#])#([A-Za-z][A-Za-z0-9_]*)")  # not "&#39;", not "##"
CAMEL_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
ELONGATED_WORD = re.compile(r"\b\w*([A-Za-z])\1{2,}\w*\b", re.IGNORECASE)  # "Oooh" as "oooh": lower case comes later
LETTER_RUN = re.compile(r"([A-Za-z])\1{2,}", re.IGNORECASE)
EMOJI_HINT = re.compile("[\u00a9\u00ae\u203c-\u3299\U0001F000-\U0001FAFF]")  # every emoji has a character in here
EMOJI_MODIFIERS = re.compile("[\U0001F3FB-\U0001F3FF\uFE0F]")  # skin tones and the emoji presentation selector
MAX_RUNS = 4  # elongated runs in one word whose spellings are compared; further runs are just cut to two letters


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
        elif step == "emoji" and EMOJI_HINT.search(text):  # the quick test keeps plain text as fast as before
            text = emoji_to_words(text)
        elif step == "hashtags" and "#" in text:
            text = HASHTAG.sub(lambda m: " ".join(hashtag_words(m.group(1))), text)
        elif step == "elongations":
            text = ELONGATED_WORD.sub(lambda m: shorten(m.group(0)), text)
        elif step == "lowercase":
            text = text.lower()
        elif step == "spaces":
            text = " ".join(text.split())
    return text


def normalize_words(words: list[str], steps: tuple[str, ...]) -> list[str]:
    """Each word as `normalize` turns it within the whole text (`" ".join(words)`), for explanations, which
    leave words out one at a time. Only the emoji step looks past a word: an emoji that repeats the one that
    ended the words before it counts once, so it is dropped here as it is there."""
    out, previous = [], None
    for word in words:
        if "emoji" in steps and (EMOJI_HINT.search(word) or EMOJI_MODIFIERS.search(word)):
            stripped = EMOJI_MODIFIERS.sub("", word)
            rest, previous = unrepeated(stripped, previous)
            if rest != stripped or not rest:  # a word left whole keeps its modifiers: normalize drops them as the text's
                word = rest
        else:
            previous = None
        out.append(normalize(word, steps) if word else "")
    return out


def unrepeated(word: str, previous: str | None) -> tuple[str, str | None]:
    """The word without its leading run of `previous` (the emoji that ended the words before it), and the emoji
    the words end with now (None when this one ends in something else)."""
    import emoji

    found, start = emoji.emoji_list(word), 0
    for match in found:
        if match["match_start"] != start or match["emoji"] != previous:
            break
        start = match["match_end"]
    if start == len(word):  # nothing but the repeated emoji: the run goes on
        return "", previous
    ends_in_emoji = found and found[-1]["match_end"] == len(word)
    return word[start:], found[-1]["emoji"] if ends_in_emoji else None


def emoji_to_words(text: str) -> str:
    """Each emoji as its English name between spaces ("😡" → " enraged face "); a run of the same emoji counts once.

    Skin tones and the presentation selector are dropped first, so 👍🏽 reads as "thumbs up".
    """
    import emoji

    text = EMOJI_MODIFIERS.sub("", text)
    out, end, previous = [], 0, None
    for found in emoji.emoji_list(text):
        between = text[end:found["match_start"]]
        repeat = found["emoji"] == previous and not between.strip()
        if not repeat:
            out += [between, " ", emoji_name(found["emoji"]), " "]
        end, previous = found["match_end"], found["emoji"]
    return "".join(out) + text[end:]


def emoji_name(char: str) -> str:
    """The emoji's name in words: ':face_with_tears_of_joy:' → 'face with tears of joy'."""
    import emoji

    name = emoji.EMOJI_DATA.get(char, {}).get("en", "")
    return name.strip(":").replace("_", " ") or char


def hashtag_words(tag: str) -> list[str]:
    """A hashtag's words: by its capitals when it has them (#BlackLivesMatter), else by word frequencies (#sofrustrated)."""
    words = CAMEL_WORDS.findall(tag)
    if len(words) > 1:
        return words
    return segment(tag) or [tag]


@functools.cache
def word_counts() -> tuple:
    """wordsegment's English unigram counts and its segmenter, loaded once, only when a text needs them."""
    import wordsegment

    wordsegment.load()
    return wordsegment.UNIGRAMS, wordsegment.segment


def segment(tag: str) -> list[str]:
    """Split run-together words, e.g. 'worstdayever' → ['worst', 'day', 'ever']."""
    return word_counts()[1](tag)


def shorten(word: str) -> str:
    """An elongated word cut to its commonest spelling with each long run as two letters or one.

    "sooooo" → "so", "gooood" → "good", "yesss" → "yes"; a word with no known spelling keeps two letters.
    """
    runs = list(LETTER_RUN.finditer(word))
    if len(runs) > MAX_RUNS:
        return LETTER_RUN.sub(r"\1\1", word)
    counts = word_counts()[0]
    candidates = [""]
    end = 0
    for run in runs:
        before = word[end:run.start()]
        candidates = [c + before + run.group(1) * n for c in candidates for n in (2, 1)]
        end = run.end()
    candidates = [c + word[end:] for c in candidates]
    return max(candidates, key=lambda c: counts.get(c.lower(), 0))  # ties keep the first: two letters


def save_steps(folder: Path, steps: tuple[str, ...]) -> None:
    """Record the steps in a model folder."""
    write_json(Path(folder) / NORMALIZATION, {"steps": list(steps)})


def load_steps(folder: Path | None) -> tuple[str, ...]:
    """The steps a model folder was trained with (none for folders without the file, e.g. Hub models)."""
    path = Path(folder) / NORMALIZATION if folder else None
    if path is None or not path.is_file():
        return ()
    try:
        steps = json.loads(path.read_text())["steps"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise EmotionCoreError(f"Model folder {folder}: {NORMALIZATION} is damaged; retrain or delete it.") from None
    return parse_steps(",".join(steps) if steps else "none")
