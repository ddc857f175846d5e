"""A seeded generator of varied English sentences for the synthetic corpus.

Sentences are composed from the word lists below with a handful of grammatical templates
(statements, questions, exclamations, reported speech, coordinated clauses), and sometimes carry
numbers (as words or digits) and inner punctuation. The lists are plain, common English words so
that espeak-ng pronounces them from its dictionary; the combinatorics give tens of millions of
distinct sentences, so an hour of speech has no visible repetition.

``SentenceGenerator(seed).sentence()`` -> one sentence; ``.lyric()`` -> a short line without digits
for the singing set.
"""
from __future__ import annotations

import random
from typing import Callable

# (singular, plural)
NOUNS: tuple[tuple[str, str], ...] = (
    ("apple", "apples"), ("basket", "baskets"), ("bicycle", "bicycles"), ("blanket", "blankets"),
    ("boat", "boats"), ("book", "books"), ("bottle", "bottles"), ("bridge", "bridges"),
    ("bucket", "buckets"), ("button", "buttons"), ("candle", "candles"), ("carpet", "carpets"),
    ("castle", "castles"), ("chair", "chairs"), ("cloud", "clouds"), ("coat", "coats"),
    ("cookie", "cookies"), ("copper kettle", "copper kettles"), ("cottage", "cottages"),
    ("drawer", "drawers"), ("engine", "engines"), ("envelope", "envelopes"), ("feather", "feathers"),
    ("fence", "fences"), ("flower", "flowers"), ("garden", "gardens"), ("glove", "gloves"),
    ("hammer", "hammers"), ("helmet", "helmets"), ("island", "islands"), ("jacket", "jackets"),
    ("ladder", "ladders"), ("lamp", "lamps"), ("letter", "letters"), ("map", "maps"),
    ("melon", "melons"), ("mirror", "mirrors"), ("mountain", "mountains"), ("notebook", "notebooks"),
    ("orange", "oranges"), ("painting", "paintings"), ("pencil", "pencils"), ("piano", "pianos"),
    ("pillow", "pillows"), ("pocket", "pockets"), ("puzzle", "puzzles"), ("rabbit", "rabbits"),
    ("ribbon", "ribbons"), ("river", "rivers"), ("rocket", "rockets"), ("sandwich", "sandwiches"),
    ("shadow", "shadows"), ("shovel", "shovels"), ("signal", "signals"), ("spoon", "spoons"),
    ("stone", "stones"), ("story", "stories"), ("suitcase", "suitcases"), ("table", "tables"),
    ("teacup", "teacups"), ("ticket", "tickets"), ("tower", "towers"), ("train", "trains"),
    ("tree", "trees"), ("trumpet", "trumpets"), ("umbrella", "umbrellas"), ("wagon", "wagons"),
    ("wall", "walls"), ("window", "windows"), ("wire", "wires"), ("village", "villages"),
    ("violin", "violins"), ("whistle", "whistles"), ("biscuit", "biscuits"), ("lantern", "lanterns"),
    ("compass", "compasses"), ("harbor", "harbors"), ("meadow", "meadows"), ("pebble", "pebbles"),
    ("parcel", "parcels"), ("onion", "onions"), ("oven", "ovens"), ("owl", "owls"),
    ("elephant", "elephants"), ("insect", "insects"), ("acorn", "acorns"), ("anchor", "anchors"),
)

# (singular, plural) for people and animals that can act as subjects
AGENTS: tuple[tuple[str, str], ...] = (
    ("baker", "bakers"), ("farmer", "farmers"), ("teacher", "teachers"), ("sailor", "sailors"),
    ("doctor", "doctors"), ("painter", "painters"), ("student", "students"), ("driver", "drivers"),
    ("neighbor", "neighbors"), ("gardener", "gardeners"), ("musician", "musicians"),
    ("carpenter", "carpenters"), ("pilot", "pilots"), ("nurse", "nurses"), ("traveler", "travelers"),
    ("child", "children"), ("old man", "old men"), ("young woman", "young women"),
    ("fisherman", "fishermen"), ("librarian", "librarians"), ("dog", "dogs"), ("cat", "cats"),
    ("horse", "horses"), ("fox", "foxes"), ("goat", "goats"), ("parrot", "parrots"),
    ("engineer", "engineers"), ("artist", "artists"), ("officer", "officers"), ("uncle", "uncles"),
    ("aunt", "aunts"), ("cousin", "cousins"), ("waiter", "waiters"), ("singer", "singers"),
)

NAMES: tuple[str, ...] = (
    "Anna", "Ben", "Clara", "Daniel", "Emma", "Felix", "Grace", "Henry", "Iris", "Jack",
    "Karen", "Leo", "Maria", "Nathan", "Olivia", "Peter", "Rosa", "Samuel", "Tina", "Victor",
    "Wendy", "Adam", "Bella", "Carl", "Diana", "Edgar", "Fiona", "George", "Helen", "Ivan",
    "Julia", "Kevin", "Laura", "Martin", "Nora", "Oscar", "Paula", "Robert", "Sophie", "Thomas",
)

ADJECTIVES: tuple[str, ...] = (
    "quiet", "bright", "heavy", "small", "old", "new", "green", "yellow", "silver", "golden",
    "broken", "careful", "curious", "tired", "happy", "gentle", "narrow", "wide", "warm", "cold",
    "empty", "lovely", "simple", "strange", "tiny", "huge", "wooden", "painted", "famous", "hidden",
    "friendly", "clever", "lazy", "patient", "rusty", "shiny", "soft", "sudden", "distant", "early",
    "proud", "nervous", "polite", "honest", "busy", "sleepy", "brave", "noisy", "purple", "orange",
    "little", "ancient", "modern", "dusty", "frozen", "crooked", "round", "square", "sweet", "bitter",
)

# (base, past) transitive
VERBS_T: tuple[tuple[str, str], ...] = (
    ("carry", "carried"), ("find", "found"), ("open", "opened"), ("close", "closed"),
    ("paint", "painted"), ("clean", "cleaned"), ("build", "built"), ("drop", "dropped"),
    ("lift", "lifted"), ("sell", "sold"), ("buy", "bought"), ("borrow", "borrowed"),
    ("fix", "fixed"), ("hide", "hid"), ("watch", "watched"), ("follow", "followed"),
    ("push", "pushed"), ("pull", "pulled"), ("wash", "washed"), ("count", "counted"),
    ("draw", "drew"), ("move", "moved"), ("bring", "brought"), ("keep", "kept"),
    ("throw", "threw"), ("catch", "caught"), ("describe", "described"), ("remember", "remembered"),
    ("forget", "forgot"), ("visit", "visited"), ("answer", "answered"), ("measure", "measured"),
    ("collect", "collected"), ("deliver", "delivered"), ("examine", "examined"), ("repair", "repaired"),
    ("wrap", "wrapped"), ("polish", "polished"), ("share", "shared"), ("notice", "noticed"),
)

# (base, past) intransitive
VERBS_I: tuple[tuple[str, str], ...] = (
    ("laugh", "laughed"), ("sleep", "slept"), ("wait", "waited"), ("sing", "sang"),
    ("run", "ran"), ("walk", "walked"), ("smile", "smiled"), ("listen", "listened"),
    ("dance", "danced"), ("travel", "traveled"), ("arrive", "arrived"), ("rest", "rested"),
    ("whisper", "whispered"), ("shout", "shouted"), ("wander", "wandered"), ("return", "returned"),
    ("work", "worked"), ("swim", "swam"), ("climb", "climbed"), ("hurry", "hurried"),
)

ADVERBS: tuple[str, ...] = (
    "quietly", "slowly", "quickly", "carefully", "happily", "loudly", "gently", "suddenly",
    "patiently", "proudly", "calmly", "eagerly", "softly", "bravely", "politely", "nervously",
    "together", "again", "alone", "early", "late", "at last", "once more", "all day",
)

PLACES: tuple[str, ...] = (
    "the station", "the market", "the harbor", "the kitchen", "the garden", "the library",
    "the old bridge", "the river", "the school", "the hill", "the forest", "the village square",
    "the beach", "the bakery", "the museum", "the field", "the hallway", "the attic", "the cellar",
    "the farm", "the park", "the shop", "the road", "the tower", "the lake", "the office",
)

PREPOSITIONS: tuple[str, ...] = (
    "across", "near", "behind", "under", "inside", "beside", "toward", "through", "around",
    "past", "along", "above", "beyond", "outside",
)

TIMES: tuple[str, ...] = (
    "Yesterday", "Last winter", "This morning", "On Monday", "On Friday evening", "After dinner",
    "Before sunrise", "Later that night", "Every summer", "At noon", "Last week", "In the spring",
    "On Sunday", "Early in the morning", "Once upon a time", "Two days ago", "That afternoon",
)

FUTURE_TIMES: tuple[str, ...] = (
    "tomorrow", "next week", "on Monday", "later tonight", "in the spring", "after dinner", "soon",
    "before noon", "next summer", "on Saturday morning", "in a few days", "at sunrise",
)

SPEECH_VERBS: tuple[str, ...] = ("said", "explained", "claimed", "noticed", "told us", "wrote", "believed", "heard")

CONNECTIVES: tuple[str, ...] = ("and", "but", "so", "while", "because", "although")

EXCLAIM: tuple[str, ...] = ("Oh", "Well", "Look", "Listen", "Wow", "Hello", "Goodness", "Oh dear")

NUMBER_WORDS: tuple[str, ...] = (
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "fifteen", "twenty", "thirty", "forty", "a hundred", "a dozen",
)


class SentenceGenerator:
    """Composes grammatical sentences from the word lists with a seeded RNG.

    ``numbers=False`` keeps digits out (numbers may still appear as words).
    """

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self._templates: list[tuple[float, Callable[[], str]]] = [
            (3.0, self._t_transitive),
            (2.0, self._t_time_intransitive),
            (1.5, self._t_question),
            (1.5, self._t_reported),
            (1.5, self._t_compound),
            (1.0, self._t_count),
            (0.8, self._t_exclaim),
            (1.0, self._t_future),
            (0.8, self._t_price),
            (0.8, self._t_where),
        ]

    # ------------------------------------------------------------------ pieces
    def _pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    @staticmethod
    def _article(word: str) -> str:
        return "an" if word[0].lower() in "aeiou" else "a"

    def _noun_phrase(self, pool=NOUNS, plural: bool = False, definite: bool | None = None) -> str:
        sing, plur = self._pick(pool)
        noun = plur if plural else sing
        words = []
        if self.rng.random() < 0.55:
            words.append(self._pick(ADJECTIVES))
        words.append(noun)
        body = " ".join(words)
        r = self.rng.random()
        if definite is None:
            definite = r < 0.5
        if plural:
            det = "the" if definite else self._pick(("some", "several", "many", "two", "three"))
        elif definite:
            det = self._pick(("the", "the", "my", "our", "her", "his", "that", "this"))
        else:
            det = self._article(body)
        return f"{det} {body}"

    def _subject(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            return self._pick(NAMES)
        return self._noun_phrase(AGENTS, plural=self.rng.random() < 0.2, definite=True)

    def _pp(self) -> str:
        if self.rng.random() < 0.5:
            return f"{self._pick(PREPOSITIONS)} {self._pick(PLACES)}"
        return f"{self._pick(PREPOSITIONS)} {self._noun_phrase(definite=True)}"

    def _number(self, digits: bool) -> str:
        if digits and self.rng.random() < 0.5:
            return str(self.rng.choice((self.rng.randint(2, 20), self.rng.randint(21, 99), self.rng.randint(100, 999))))
        return self._pick(NUMBER_WORDS)

    @staticmethod
    def _cap(s: str) -> str:
        return s[0].upper() + s[1:]

    # ------------------------------------------------------------------ templates
    def _t_transitive(self) -> str:
        s = f"{self._subject()} {self._pick(VERBS_T)[1]} {self._noun_phrase()}"
        if self.rng.random() < 0.7:
            s += f" {self._pp()}"
        if self.rng.random() < 0.3:
            s += f" {self._pick(ADVERBS)}"
        return self._cap(s) + "."

    def _t_time_intransitive(self) -> str:
        s = f"{self._pick(TIMES)}, {self._subject()} {self._pick(VERBS_I)[1]} {self._pick(ADVERBS)}"
        if self.rng.random() < 0.5:
            s += f" {self._pp()}"
        return s + "."

    def _t_question(self) -> str:
        wh = self._pick(("Did", "Why did", "Where did", "When did", "How did"))
        if self.rng.random() < 0.5:
            s = f"{wh} {self._subject()} {self._pick(VERBS_T)[0]} {self._noun_phrase()}"
        else:
            s = f"{wh} {self._subject()} {self._pick(VERBS_I)[0]} {self._pp()}"
        return s + "?"

    def _t_reported(self) -> str:
        s = (f"{self._pick(NAMES)} {self._pick(SPEECH_VERBS)} that {self._subject()} "
             f"{self._pick(VERBS_T)[1]} {self._noun_phrase()}")
        if self.rng.random() < 0.4:
            s += f" {self._pp()}"
        return s + "."

    def _t_compound(self) -> str:
        a = f"{self._subject()} {self._pick(VERBS_T)[1]} {self._noun_phrase()}"
        b = f"{self._subject()} {self._pick(VERBS_I)[1]} {self._pick(ADVERBS)}"
        return self._cap(f"{a}, {self._pick(CONNECTIVES)} {b}") + "."

    def _t_count(self) -> str:
        n = self._number(self.numbers)
        s = f"There were {n} {self._pick(ADJECTIVES)} {self._pick(NOUNS)[1]} {self._pp()}"
        return s + self._pick((".", ".", "!"))

    def _t_exclaim(self) -> str:
        adj = self._pick(ADJECTIVES)
        noun = self._pick(NOUNS)[0]
        return f"{self._pick(EXCLAIM)}, what {self._article(adj)} {adj} {noun} that was!"

    def _t_future(self) -> str:
        s = f"{self._pick(NAMES)} will {self._pick(VERBS_T)[0]} {self._noun_phrase()} {self._pick(FUTURE_TIMES)}"
        return s + "."

    def _t_price(self) -> str:
        n = self._number(self.numbers)
        unit = self._pick(("dollars", "coins", "minutes", "hours", "miles", "days"))
        return self._cap(f"{self._subject()} {self._pick(VERBS_T)[1]} {self._noun_phrase()} in {n} {unit}") + "."

    def _t_where(self) -> str:
        s = f"{self._pick(EXCLAIM)}, the {self._pick(NOUNS)[0]} is {self._pick(PREPOSITIONS)} {self._pick(PLACES)}"
        return s + self._pick((".", "!", "?"))

    # ------------------------------------------------------------------ public
    numbers: bool = True

    def sentence(self, numbers: bool = True, pair_prob: float = 0.25) -> str:
        """One sentence (ends with ``.``, ``?`` or ``!``), or with probability ``pair_prob`` two of
        them in a row (longer utterances); digits only when ``numbers``."""
        self.numbers = numbers
        weights = [w for w, _ in self._templates]
        templates = [t for _, t in self._templates]
        text = self.rng.choices(templates, weights=weights)[0]()
        if self.rng.random() < pair_prob:
            text += " " + self.rng.choices(templates, weights=weights)[0]()
        return text

    def lyric(self) -> str:
        """A short line for singing: 4 to 8 words, no digits, one clause."""
        while True:
            r = self.rng.random()
            if r < 0.4:
                s = f"{self._noun_phrase(AGENTS, definite=True)} {self._pick(VERBS_I)[1]} {self._pp()}"
            elif r < 0.7:
                s = f"{self._pick(NAMES)} {self._pick(VERBS_T)[1]} {self._noun_phrase()}"
            else:
                s = f"{self._pick(ADJECTIVES)} {self._pick(NOUNS)[1]} {self._pick(PREPOSITIONS)} {self._pick(PLACES)}"
            if 4 <= len(s.split()) <= 8:
                return self._cap(s)
