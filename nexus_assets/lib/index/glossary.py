"""Cross-language query expansion from a small generic Indonesian <-> English school glossary.

The bundled MiniLM is English-only and most books are Indonesian, so an English question over an
Indonesian page (or the reverse) shares few words with its answer; character 4-grams only help where
the words are cognates (algorithm/algoritma). `glossary_words.GLOSSARY` lists about 400 everyday school
words of both languages (written by category from general knowledge, not from the corpus or the
questions: see its header). A query's content words are looked up in it, and their translations
feed two extra signals of the hybrid ranking (`search.Ranking.gloss_weight`, `dense_gloss`):
BM25 over the translated words, and the English gloss of an Indonesian question embedded beside the
question for the English model.

Lookup forgives the commonest inflections, so `pengunjung`'s entry serves `dikunjungi` only when an
entry holds that stem: English plural and -ed/-ing endings, Indonesian affixes (di-, me-, ber-, ter-,
pe-, -kan, -an, -i, -nya) are stripped on both sides when a word itself is not listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from nexus_assets.lib.index.glossary_words import GLOSSARY
from nexus_assets.lib.index.lexical import STOPWORDS, content_tokens, tokenize

_ID_PREFIXES = ("meng", "meny", "mem", "men", "me", "peng", "peny", "pem", "pen", "per", "pe", "ber", "ter", "di", "ke")
_ID_SUFFIXES = ("nya", "kan", "an", "i")
_EN_SUFFIXES = ("ies", "es", "s", "ed", "ing")
# A nasal prefix swallows the root's first consonant before a vowel: meng+kunjungi -> mengunjungi,
# men+tulis -> menulis, mem+pilih -> memilih, meny+simpan -> menyimpan.
_NASAL_LOST = {"meng": "k", "peng": "k", "men": "t", "pen": "t", "mem": "p", "pem": "p", "meny": "s", "peny": "s"}
_VOWELS = frozenset("aeiou")


def id_stems(word: str) -> tuple[str, ...]:
    """Rough Indonesian stems, used only to look a word up (never shorter than 4 letters): up to two
    suffixes off (jawabannya -> jawaban -> jawab), then one prefix, with the consonant a nasal prefix
    swallowed put back as another guess (mengunjungi -> unjung, kunjung)."""
    forms = [word]
    for _ in range(2):
        last = forms[-1]
        suffix = next((x for x in _ID_SUFFIXES if last.endswith(x) and len(last) - len(x) >= 4), None)
        if suffix is None:
            break
        forms.append(last[: -len(suffix)])
    out: list[str] = []
    for form in forms[1:] or forms:
        prefix = next((p for p in _ID_PREFIXES if form.startswith(p) and len(form) - len(p) >= 4), None)
        if prefix is None:
            out.append(form)
            continue
        root = form[len(prefix) :]
        lost = _NASAL_LOST.get(prefix)
        out.extend((root, lost + root) if lost and root[0] in _VOWELS else (root,))
        out.append(form)
    return tuple(dict.fromkeys(out))


def id_stem(word: str) -> str:
    """The first guess of `id_stems`."""
    return id_stems(word)[0]


def en_stem(word: str) -> str:
    """A rough English stem (plural, -ed, -ing) used only to look a word up."""
    for suffix in _EN_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


@dataclass(frozen=True)
class Glossary:
    """Word -> words of the other language, both ways, plus the same by stem."""

    to_id: dict[str, frozenset[str]]  # English word -> Indonesian words
    to_en: dict[str, frozenset[str]]  # Indonesian word -> English words
    to_id_by_stem: dict[str, frozenset[str]]
    to_en_by_stem: dict[str, frozenset[str]]

    @classmethod
    def parse(cls, text: str, source: str = "glossary") -> Glossary:
        to_id: dict[str, set[str]] = {}
        to_en: dict[str, set[str]] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.count("=") != 1:
                raise ValueError(f"{source}:{number}: expected 'english words = indonesian words', got {raw!r}")
            left, right = (side.split(",") for side in line.split("="))
            english = {t for item in left for t in _words(item)}
            indonesian = {t for item in right for t in _words(item)}
            if not english or not indonesian:
                raise ValueError(f"{source}:{number}: a side has no content word: {raw!r}")
            for word in _keys(left):
                to_id.setdefault(word, set()).update(indonesian - {word})
            for word in _keys(right):
                to_en.setdefault(word, set()).update(english - {word})
        frozen_id = {k: frozenset(v) for k, v in to_id.items() if v}
        frozen_en = {k: frozenset(v) for k, v in to_en.items() if v}
        return cls(frozen_id, frozen_en, _by_stem(frozen_id, lambda w: (en_stem(w),)), _by_stem(frozen_en, id_stems))

    def indonesian_for(self, word: str) -> frozenset[str]:
        return self.to_id.get(word) or self.to_id_by_stem.get(en_stem(word), frozenset())

    def english_for(self, word: str) -> frozenset[str]:
        if word in self.to_en:
            return self.to_en[word]
        found: set[str] = set()
        for stem in id_stems(word):
            found |= self.to_en.get(stem, frozenset()) | self.to_en_by_stem.get(stem, frozenset())
        return frozenset(found)

    def expand(self, query: str) -> QueryGloss:
        """The translations of the query's content words, each language apart, minus words it has."""
        words = content_tokens(query)
        have = set(words)
        indonesian: dict[str, None] = {}
        english: dict[str, None] = {}
        for word in words:
            indonesian.update(dict.fromkeys(sorted(self.indonesian_for(word) - have)))
            english.update(dict.fromkeys(sorted(self.english_for(word) - have)))
        return QueryGloss(tuple(indonesian), tuple(english))


@dataclass(frozen=True)
class QueryGloss:
    indonesian: tuple[str, ...]  # translations into Indonesian of the query's English words
    english: tuple[str, ...]  # translations into English of the query's Indonesian words

    @property
    def words(self) -> tuple[str, ...]:
        return (*self.indonesian, *self.english)

    def lexical_query(self) -> str:
        return " ".join(self.words)


def _words(item: str) -> list[str]:
    return [t for t in tokenize(item) if t not in STOPWORDS]


def _keys(items: list[str]) -> list[str]:
    """Single-word items only: a phrase ('computer science') translates as a whole, not word by word."""
    return [words[0] for item in items if len(words := _words(item)) == 1]


def _by_stem(table: dict[str, frozenset[str]], stems: Callable[[str], tuple[str, ...]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for word, translations in table.items():
        for stem in stems(word):
            out.setdefault(stem, set()).update(translations)
    return {k: frozenset(v) for k, v in out.items()}


@cache
def glossary() -> Glossary:
    """The shipped glossary, parsed once per process."""
    return Glossary.parse(GLOSSARY, "glossary_words.GLOSSARY")
