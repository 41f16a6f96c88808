"""Property-based fuzzing of every way in: the dialogue engine, the web chat's WebSocket,
Telegram updates, VK events and the portal's forms.

Runs are reproducible (``derandomize=True``, no example database) and short by default;
``TSUR_FUZZ_EXAMPLES=<n>`` multiplies every test's example count for a long run
(``TSUR_FUZZ_EXAMPLES=10`` is ten times the default).
"""

from __future__ import annotations

import os

from hypothesis import strategies as st


def examples(default: int) -> int:
    """``default`` scaled by ``TSUR_FUZZ_EXAMPLES`` (a factor, 1 when unset)."""
    try:
        factor = float(os.environ.get("TSUR_FUZZ_EXAMPLES", "1") or 1)
    except ValueError:
        factor = 1.0
    return max(1, int(default * factor))


# --- shared strategies --------------------------------------------------------------------

#: Words that reach special branches: commands, menu words, numbers, SQL and markup.
SPECIAL_TEXTS = [
    "", " ", "\n", "/start", "/menu", "/help", "/start@tsur_bot deep", "/unknown_cmd",
    "menu", "Меню", "помощь", "start", "1", "2", "10", "0", "-1", "99999999999999999999",
    "<script>alert(1)</script>", "' OR 1=1 --", "%", "_", "\\", "\x00", "\u202e\u0627\u0644",
    "👨‍👩‍👧‍👦" * 5, "\u200b\u200d\ufeff", "В Махачкале на улице Ленина нет воды уже три дня",
    "Каспийск", "Дербент", "Махачкала, ул. Ленина 1", "{\"p\": \"menu:new\"}",
]

#: Any unicode text but lone surrogates (no channel can deliver those).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)

texts = st.one_of(
    st.sampled_from(SPECIAL_TEXTS),
    any_text,
    st.text(st.characters(codec="utf-8", categories=("Cc", "Cf", "Zs", "Zl", "Zp", "Mn")),
             max_size=50),
    # long ones: 10,000 is the description limit, both sides of it
    st.builds(lambda c, n: c * n, st.sampled_from(["я", "a ", "💧", "\u0301", "\n"]),
              st.sampled_from([9_999, 10_000, 10_001, 12_345])),
)

#: Payloads that look like ours (some of them forged), and junk.
_SLUG = st.sampled_from(["housing", "roads", "waste", "x", "no_water", "potholes",
                         "makhachkala", "kaspiysk", "derbent", "ru", "en", "zz", "main",
                         "new", "my", "subs", "lang", "help", "yes", "no", "pick", "done",
                         "skip", "back", "submit", "cancel", "continue", "discard", "on",
                         "take", "y", "n", "fy", "fn", "r"])
_NUMBER = st.one_of(st.integers(0, 10).map(str), st.integers(0, 2**63).map(str),
                    st.just("-1"), st.just("1e3"), st.just("０"))
_KIND = st.sampled_from(["menu", "draft", "cls", "cat", "sec", "nav", "photo", "loc", "mun",
                         "munp", "consent", "cmp", "add", "sv", "unsub", "bcast", "bo",
                         "lang", "smun", "smunp", "ssec", "subs", "c", "sector", "xx"])
forged_payloads = st.one_of(
    st.builds(lambda k, a: f"{k}:{a}", _KIND, st.one_of(_SLUG, _NUMBER)),
    st.builds(lambda k, a, b: f"{k}:{a}:{b}", _KIND, st.one_of(_SLUG, _NUMBER),
              st.one_of(_SLUG, _NUMBER)),
    st.builds(lambda n, a: f"sv:{n}:{a}", _NUMBER,
              st.sampled_from(["y", "n", "skip", "fy", "fn", "r:1", "r:5", "r:0", "r:9"])),
    st.sampled_from(["cat:housing:x", "add:999", "sv:1:y", "unsub:1", "unsub:", "bo:1:take",
                     "menu:new", "menu:main", "draft:discard", "cmp:submit", "consent:yes",
                     "add:done", "photo:done", "loc:skip", "cls:yes", "cls:pick", "nav:back",
                     "bcast:on", "lang:en", "lang:ru", "mun:yes", "munp:1", "munp:99",
                     "smunp:1", "ssec:roads", "subs:done", "subs:sectors", "", ":", "::",
                     "a" * 65, "menu:" + "x" * 60, "я" * 40, "{\"p\":\"menu:new\"}"]),
    any_text,
)
