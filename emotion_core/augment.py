"""Template augmentation that teaches a model negation and sarcasm.

    from emotion_core.augment import write_augmented
    write_augmented("data/augmented/train.txt", 3000, seed=0)

Behaviour tests (CheckList: Ribeiro et al., ACL 2020) found a model that reads the emotion word and
not the sentence: a negated "happy" came out as joy, a sarcastic "oh great" as joy, a denied fear as
fear. Its training data has too few such sentences for the model to learn that "not" or a bad situation
turns the word around. Rows made from templates with fill-ins add them, and each family is paired with
plain, literal rows built from the same fillers, so the model learns the difference the negation or the
sarcasm makes rather than a new surface cue ("great" means anger). That pairing is counterfactual
augmentation (Kaushik et al., ICLR 2020, "Learning the difference that makes a difference").

The templates below were written apart from the behaviour suite in `benchmarks/data/`, without reading
it, so that the suite still measures what a model learned rather than what it was shown.
"""

import itertools
import random
import string
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import EmotionCoreError
from .labels import KNOWN_LABELS
from .model_folder import write_text

# ----------------------------------------------------------------------------- fillers

FILLERS = {
    "happy": ["happy", "glad", "pleased", "thrilled", "excited", "delighted", "cheerful", "satisfied", "overjoyed", "content"],
    "low": ["sad", "upset", "down", "worried", "nervous", "anxious", "stressed", "scared", "gloomy", "miserable", "lonely",
            "afraid", "heartbroken"],
    "sad": ["sad", "upset", "down", "miserable", "gloomy", "heartbroken", "devastated", "hopeless", "low", "crushed"],
    "angry": ["angry", "mad", "furious", "annoyed", "irritated", "livid", "fuming", "outraged", "cross", "frustrated"],
    "scared": ["scared", "afraid", "frightened", "terrified", "nervous", "anxious", "worried", "uneasy", "panicked"],
    "surprised": ["surprised", "shocked", "amazed", "astonished", "stunned", "taken aback", "startled", "caught off guard"],
    "denied": ["scared", "angry", "mad", "annoyed", "upset", "worried", "nervous", "surprised", "shocked", "sad", "bothered",
               "stressed", "alarmed", "fussed"],
    "like": ["love", "adore", "like", "enjoy", "care about", "cherish", "look forward to", "appreciate", "get excited about"],
    "affection": ["love", "adore", "cherish", "treasure", "care about", "dote on", "really love", "truly adore"],
    "opener": ["Oh great", "Wonderful", "Just perfect", "Fantastic", "Oh brilliant", "Lovely", "Oh wonderful", "Perfect",
               "Terrific", "Splendid", "Awesome", "Oh fantastic"],
    "resigned": ["Just my luck", "Story of my life", "Why do I even bother", "Should have seen it coming", "Nothing ever goes my way",
                 "I give up", "Typical", "Of course it happens to me"],
    "event": ["the move", "the results", "my new job", "the holiday", "the new flat", "my exam grades", "the wedding plans",
              "how the trip went", "the way the party turned out", "my birthday this year", "the new manager", "the concert",
              "our anniversary dinner", "the final score", "the team's decision"],
    "routine": ["the meeting", "the results", "the new schedule", "the software update", "the announcement", "the weather forecast",
                "the price change", "the quarterly report", "the new policy", "the test scores", "the election result",
                "the exam timetable"],
    "thing": ["this job", "my phone", "that show", "the new update", "this town", "my commute", "the office", "that band",
              "this game", "my car", "social media", "the group chat", "this app", "my old laptop", "the cafe down the road"],
    "dear": ["my grandmother", "my best friend", "my little brother", "our dog", "my husband", "my wife", "my kids", "my partner",
             "my mum", "my dad", "my old friends", "my girlfriend", "my boyfriend"],
    "bad_event": ["a flat tyre", "a cancelled train", "rain on picnic day", "the wifi dying again", "another parking ticket",
                  "a two-hour delay", "the printer jamming again", "a burst pipe in the kitchen", "the heating broken in January",
                  "the lift out of order again", "a meeting that could have been an email", "the neighbours drilling at seven am",
                  "coffee all over my keyboard", "a dead battery before my big call", "roadworks outside my window"],
    "good_news": ["the test came back clear", "I finally got the job", "my sister is coming home", "we paid off the loan",
                  "the surgery went well", "I passed my driving test", "our offer on the house was accepted", "the lost cat came home",
                  "my friend is out of hospital", "I got the scholarship", "the bonus came through", "we won the final",
                  "the scan showed nothing serious", "my flight was moved earlier"],
    "personal_loss": ["I failed the exam again", "my phone is broken", "I lost my wallet", "she forgot my birthday again",
                      "nobody came to my party", "I missed the last bus home", "my flight got cancelled", "I didn't get the job",
                      "my plants all died", "the one shirt I liked got ruined", "my best friend moved away", "I got dumped by text",
                      "the interview went nowhere", "my savings are gone"],
    "rude_act": ["finishing my leftovers", "parking in my spot", "taking the last coffee", "reading my messages",
                 "leaving your dishes in the sink", "cancelling on me last minute", "talking over me in the meeting",
                 "borrowing my charger without asking", "blocking the driveway", "spoiling the ending", "hanging up on me",
                 "using up all the hot water", "forgetting to tell me about the change"],
    "kind_act": ["fixing my bike", "covering my shift", "the lovely flowers", "helping me move", "picking me up from the station",
                 "making dinner", "looking after the kids", "remembering my birthday", "the thoughtful card", "lending me your car",
                 "staying late to help", "checking in on me"],
    "tedious": ["being kept on hold all afternoon", "sitting in traffic all morning", "filling in the same form three times",
                "doing my taxes", "queueing at the post office", "scrubbing the oven", "rebooting the router every hour",
                "repeating myself in every meeting", "being stuck on a delayed train", "chasing the landlord about repairs",
                "cleaning up after my roommate", "getting spam calls at dinner"],
    "pleasant": ["sleeping in on Sundays", "walking on the beach", "cooking with friends", "reading in the garden", "baking bread",
                 "dancing in the kitchen", "long summer evenings", "hot chocolate on a cold night", "playing with my dog",
                 "road trips with my sister", "the first snow of the year", "fresh coffee in the morning"],
}

# ----------------------------------------------------------------------------- templates: (template, label)

# The label is the one the whole sentence honestly carries: a let-down "not happy" is sadness, relief is joy,
# and a denial counts as neutral only when it names no other emotion in its place.
AUGMENTED = {
    "negated joy": [
        ("I'm not {happy} about {event} at all.", "sadness"),
        ("Nothing about {event} makes me {happy}.", "sadness"),
        ("I can't say I'm {happy} about {event}, if I'm honest.", "sadness"),
        ("I wish I could be {happy} about {event}, but I'm just disappointed.", "sadness"),
        ("{event} didn't leave me {happy} the way I hoped.", "sadness"),
        ("I don't feel {happy} about {event} anymore.", "sadness"),
    ],
    "relief": [
        ("I'm not {low} anymore, {good_news}.", "joy"),
        ("For once I'm not {low}, {good_news}!", "joy"),
        ("No more feeling {low} for me, {good_news}.", "joy"),
        ("I was so {low}, but not anymore: {good_news}!", "joy"),
        ("I'm not {scared} about {event} now, it all worked out.", "joy"),
    ],
    "denied emotion": [
        ("I never said I was {denied}.", "neutral"),
        ("To be clear, I'm not {denied}, I only wanted the details.", "neutral"),
        ("No, I'm not {denied} about {routine}. I just asked a question about it.", "neutral"),
        ("I wasn't {denied} about {routine}, I simply noted it.", "neutral"),
        ("I was not {surprised} one bit by {routine}, it went as planned.", "neutral"),
        ("Nobody was {surprised} by {routine}, it was announced weeks ago.", "neutral"),
    ],
    "negated liking": [
        ("I don't {like} {thing} anymore, it just annoys me.", "anger"),
        ("I used to {like} {thing}, now it drives me up the wall.", "anger"),
        ("I no longer {like} {thing}, I'm sick of it.", "anger"),
        ("Don't tell me I {like} {thing}. I can't stand it.", "anger"),
    ],
    "sarcasm": [
        ("{opener}, {bad_event}.", "anger"),
        ("{opener}, {bad_event}. Exactly what I needed today.", "anger"),
        ("Thanks a lot for {rude_act}, really appreciate it.", "anger"),
        ("I just love {tedious}.", "anger"),
        ("What a lovely way to start the day: {bad_event}.", "anger"),
        ("Yay, {bad_event}. Exactly what I needed.", "anger"),
        ("Oh sure, keep {rude_act}, it's not like I mind.", "anger"),
    ],
    "resigned sarcasm": [
        ("{opener}, {personal_loss}. {resigned}.", "sadness"),
        ("Yay me, {personal_loss}. {resigned}.", "sadness"),
        ("Well isn't that nice, {personal_loss}. {resigned}.", "sadness"),
    ],
}

# The same fillers said plainly, one contrast family for every two above: without them "oh great" or
# "not" would simply become a new cue for anger or sadness.
CONTRAST = {
    "plain joy": [
        ("I'm so {happy} about {event}.", "joy"),
        ("{opener}, {good_news}!", "joy"),
        ("Thanks a lot for {kind_act}, really appreciate it.", "joy"),
        ("I just love {pleasant}.", "joy"),
        ("What a lovely way to start the day: {good_news}.", "joy"),
        ("Yay, {good_news}. Exactly what I needed.", "joy"),
        ("I {like} {thing}, it always cheers me up.", "joy"),
    ],
    "plain negative": [
        ("I feel so {sad} about {event}.", "sadness"),
        ("{personal_loss} and I feel {sad}.", "sadness"),
        ("I'm {angry} about {bad_event}.", "anger"),
        ("Stop {rude_act}, it makes me so {angry}.", "anger"),
        ("I'm {scared} about {event}.", "fear"),
        ("I'm {scared} of losing {dear}.", "fear"),
        ("I was {surprised} by {routine}, I never saw it coming.", "surprise"),
    ],
    "plain love": [
        ("I {affection} {dear} so much.", "love"),
        ("I {affection} {dear} more than words can say.", "love"),
        ("I can't stop smiling when I think of how much I {affection} {dear}.", "love"),
        ("Spending time with {dear} makes me feel so loved.", "love"),
        ("I feel so much love for {dear} today.", "love"),
        ("Nobody means more to me than {dear}.", "love"),
        ("Being with {dear} fills me with warmth and tenderness.", "love"),
    ],
}
FAMILIES = {**AUGMENTED, **CONTRAST}

LOWERCASE_SHARE = 0.3  # of texts written all in lower case, as much of the emotion data set is
BARE_SHARE = 0.3  # of texts without their final '.' or '!'
SPENT = object()  # what `interleave` gets from a group with nothing left

# ----------------------------------------------------------------------------- generating


def fill(template: str, label: str) -> Iterator[tuple[str, str]]:
    """Every text one template makes, in a fixed order, each starting with a capital."""
    if label not in KNOWN_LABELS:
        raise EmotionCoreError(f"Template {template!r} has label {label!r}; labels are {', '.join(KNOWN_LABELS)}.")
    slots = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    for values in itertools.product(*(FILLERS[slot] for slot in slots)):
        text = template.format(**dict(zip(slots, values)))
        yield text[0].upper() + text[1:], label


def interleave(groups: Iterable[Iterable]) -> Iterator:
    """Take one item from each group in turn until all are spent, so no group crowds out the others."""
    iterators = [iter(group) for group in groups]
    while iterators:
        for iterator in list(iterators):
            item = next(iterator, SPENT)
            if item is SPENT:
                iterators.remove(iterator)
            else:
                yield item


def shuffled(items: Iterable, rng: random.Random) -> list:
    """A shuffled copy, so the templates and fillers keep their written order."""
    items = list(items)
    rng.shuffle(items)
    return items


def distinct(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """Pairs whose text has not come before."""
    seen = set()
    for text, label in pairs:
        if text not in seen:
            seen.add(text)
            yield text, label


def capacity() -> int:
    """How many distinct texts the templates can make."""
    return sum(1 for _ in distinct(pair for templates in FAMILIES.values() for template in templates for pair in fill(*template)))


def vary(text: str, rng: random.Random) -> str:
    """Some texts in lower case, some without final punctuation, so neither casing nor a full stop becomes a cue."""
    if rng.random() < LOWERCASE_SHARE:
        text = text.lower()
    if rng.random() < BARE_SHARE:
        text = text.rstrip(".!")
    return text


def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` distinct (text, label) pairs, taken in turn from each family and each template, the same for a seed."""
    most = capacity()
    if not 0 <= n <= most:
        raise EmotionCoreError(f"Asked for {n} augmented texts; the templates make at most {most:,} distinct ones. "
                               "Ask for fewer, or add fillers or templates in emotion_core/augment.py.")
    rng = random.Random(seed)
    families = [list(interleave([shuffled(fill(*template), rng) for template in templates])) for templates in FAMILIES.values()]
    pairs = list(itertools.islice(distinct(interleave(shuffled(families, rng))), n))
    return [(vary(text, rng), label) for text, label in shuffled(pairs, rng)]


def write_augmented(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write `generate(n, seed)` as `text;label` lines, the emotion data set's format, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(f"{text};{label}\n" for text, label in generate(n, seed)))
    return path
