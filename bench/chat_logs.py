"""Realistic chatbot logs for the benchmarks: a 2 KB turn, and turns of any size that quote long sources.

Sizes are bytes of JSON, and which JSON matters:

- a BTQL page carries the row as Braintrust sends it, UTF-8 (a Hebrew letter is 2 bytes);
- a dataset insert carries the event as ``requests`` encodes ``json=``, with ``ensure_ascii``
  (a Hebrew letter is ``\\u05d0``, 6 bytes).

So ``long_chat_log`` is sized for one encoding or the other, and each benchmark reports the sizes
it measured on what was actually sent.
"""

import json

# A root span of Sefaria's chatbot: the conversation so far as input messages, a sourced answer as
# output, session metadata, token metrics, a score, tags. About 2 KB of JSON each.
_QUESTION = "מה ההלכה לגבי נטילת ידיים לפני הסעודה? And where does the Talmud discuss it?"
_ANSWER = (
    "Washing the hands before a meal with bread (netilat yadayim) is a rabbinic obligation discussed in the "
    "Talmud, Chullin 105a-106b, and codified in the Shulchan Arukh, Orach Chayim 158:1. "
    "הרמב\"ם, הלכות ברכות ו:א: \"כל האוכל פת שמברכין עליה המוציא צריך נטילת ידים תחלה\". "
) * 3
_METADATA = {
    "session_id": "2f0c9a5e-4f7b-4a8e-9a61-3c2d9f1e7b10", "locale": "he", "client": "web", "turn": 3,
    "model": "claude-sonnet-4-5", "refs": ["Chullin 105a", "Shulchan Arukh, Orach Chayim 158:1"],
}
REALISTIC_LOG = {
    "input": {
        "messages": [
            {"role": "user", "content": "What is the source for lighting Shabbat candles?"},
            {"role": "assistant", "content": "The Mishnah in Shabbat 2:6-7 and the Talmud, Shabbat 25b."},
            {"role": "user", "content": _QUESTION},
        ]
    },
    "output": _ANSWER,
    "metadata": _METADATA,
    "tags": ["halacha"],
    "scores": {"relevance": 0.86, "groundedness": 1},
    "metrics": {"start": 1764000000.125, "end": 1764000003.482, "prompt_tokens": 1834, "completion_tokens": 412,
                "tokens": 2246},
    "span_attributes": {"name": "chat_turn", "type": "llm"},
}

# (reference, Hebrew text, English) quoted in full, as the chatbot quotes its sources.
_SOURCES = (
    (
        "Mishnah Shabbat 2:1",
        "במה מדליקין ובמה אין מדליקין? אין מדליקין לא בלכש, ולא בחוסן, ולא בכלך, ולא בפתילת האידן, ולא "
        "בפתילת המדבר, ולא בירוקה שעל פני המים. לא בזפת, ולא בשעוה, ולא בשמן קיק, ולא בשמן שריפה, ולא "
        "באליה, ולא בחלב.",
        "With what may one light the Shabbat lamp, and with what may one not light? One may not light with "
        "cedar bast, nor with uncombed flax, nor with raw silk, nor with a wick of willow bast, nor with a "
        "wick of desert weeds, nor with the green moss on the water; nor with pitch, nor with wax, nor with "
        "castor oil, nor with oil of burning, nor with tail fat, nor with tallow.",
    ),
    (
        "Shabbat 21b",
        "תנו רבנן: מצות חנוכה נר איש וביתו. והמהדרין, נר לכל אחד ואחד. והמהדרין מן המהדרין, בית שמאי "
        "אומרים: יום ראשון מדליק שמנה, מכאן ואילך פוחת והולך. ובית הלל אומרים: יום ראשון מדליק אחת, "
        "מכאן ואילך מוסיף והולך.",
        "The Sages taught: the mitzvah of Hanukkah is one light for a person and his household. Those who "
        "beautify the mitzvah light one for each member of the household; and for those who beautify it "
        "further, Beit Shammai say: on the first day one lights eight and then decreases; Beit Hillel say: "
        "on the first day one lights one and then increases.",
    ),
    (
        "Mishneh Torah, Shabbat 5:1",
        "הדלקת נר בשבת אינה רשות, אם רצה מדליק ואם רצה אינו מדליק, ולא מצוה שאינו חייב לרדוף אחריה עד "
        "שיעשנה, כגון עירובי חצרות או נטילת ידים לאכילה, אלא חובה. ואחד אנשים ואחד נשים חייבין להיות "
        "בבתיהם נר דלוק בשבת. אפילו אין לו מה יאכל, שואל על הפתחים ולוקח שמן ומדליק את הנר, שזה בכלל "
        "עונג שבת.",
        "Lighting a lamp on Shabbat is not optional, nor a mitzvah one need not pursue, like the eruv of "
        "courtyards or washing the hands before eating; it is an obligation. Men and women alike must have "
        "a lamp burning in their homes on Shabbat. Even one who has nothing to eat begs at the doors, buys "
        "oil and lights the lamp, for this is part of the delight of Shabbat.",
    ),
    (
        "Shulchan Arukh, Orach Chayim 263:2-3",
        "הנשים מוזהרות בו יותר, לפי שהן מצויות בבית ועוסקות בצרכי הבית. ומברכת: אשר קדשנו במצותיו "
        "וצונו להדליק נר של שבת. ויש מי שאומר שאין לברך כשמדליקין אלא לאחר ההדלקה.",
        "Women are more bound by it, since they are at home and see to the household's needs. She blesses: "
        "who sanctified us with His commandments and commanded us to light the Shabbat lamp.",
    ),
    (
        "Mishneh Torah, Blessings 6:1",
        "כל האוכל פת שמברכין עליה המוציא צריך נטילת ידים תחלה ואחרונה, ואף על פי שאינו יודע בידיו "
        "טינוף ולא לכלוך ואינו אוכל אלא בכף או במזלג.",
        "Whoever eats bread over which HaMotzi is said must wash the hands before and after, even if he "
        "knows of no dirt on his hands and eats only with a spoon or a fork.",
    ),
)


def _size(value: object, *, ensure_ascii: bool) -> int:
    return len(json.dumps(value, ensure_ascii=ensure_ascii).encode())


def _quote(index: int) -> str:
    reference, hebrew, english = _SOURCES[index % len(_SOURCES)]
    return f"\n\n[{index + 1}] {reference}:\n> {hebrew}\n\n{english}"


def long_chat_log(target_bytes: int, *, ensure_ascii: bool) -> dict:
    """A chat turn about Shabbat candles whose answer quotes sources at length (Hebrew and English),
    sized so that its fields (input, output, metadata) encode to ``target_bytes``: UTF-8 JSON with
    ``ensure_ascii=False``, requests' ``json=`` with ``ensure_ascii=True``. What a row or an event adds
    around these fields (ids, times, provenance) is not counted here."""
    question = "Where are the laws of lighting Shabbat candles, and who is obliged? Quote the sources in full."

    def fields(answer: str) -> dict:
        return {
            "input": {
                "messages": [
                    {"role": "user", "content": "מה המקור להדלקת נרות שבת?"},
                    {"role": "assistant", "content": "The Mishnah in Shabbat 2 and the Talmud, Shabbat 25b."},
                    {"role": "user", "content": question},
                ]
            },
            "output": answer,
            "metadata": _METADATA,
        }

    answer = "Lighting Shabbat candles is an obligation for every household; here are the sources in full."
    if _size(fields(answer), ensure_ascii=ensure_ascii) > target_bytes:
        raise ValueError(f"{target_bytes} bytes is smaller than the turn without quotes")
    index = 0
    while _size(fields(answer + _quote(index)), ensure_ascii=ensure_ascii) <= target_bytes:
        answer += _quote(index)
        index += 1
    # The last quote, cut where the size is reached: a binary search over its length in characters.
    quote, low, high = _quote(index), 0, len(_quote(index))
    while low < high:
        middle = (low + high + 1) // 2
        if _size(fields(answer + quote[:middle]), ensure_ascii=ensure_ascii) <= target_bytes:
            low = middle
        else:
            high = middle - 1
    return fields(answer + quote[:low])
