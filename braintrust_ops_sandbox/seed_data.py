"""Sample data for the sandbox: Sefaria chatbot tags, datasets and ~300 English and Hebrew turns.

Deterministic: one seeded ``random.Random`` and times derived from ``now``, so seeding twice gives the same data.
"""

import random
import uuid
from datetime import datetime, timedelta

RNG_SEED = 20261124
SPAN = timedelta(hours=30)  # 30 h rather than 24 h so a "last 24 hours" query has logs to leave out
MODEL = "claude-sonnet-4-5"

TAGGABLE_TAGS = [  # the marker in varied case and position, as staff actually type it
    ("halacha", "Questions about Jewish law and practice. dataset-tagging"),
    ("translation", "DATASET-TAGGING: requests to translate or explain the wording of a text"),
    ("sources", "Dataset-Tagging - where a text, idea or quote is found in the library"),
    ("hebrew", "dataset-tagging; the conversation is in Hebrew"),
    ("off-topic", "dataset-tagging requests unrelated to Jewish texts"),
]
UNTAGGABLE_TAGS = [("ui-feedback", "thumbs up/down from the UI"), ("needs-review", None), ("empty-description", "")]

DATASETS = [  # every shape of the [[relevant_tags: ...]] marker the parser must accept or refuse
    ("Halacha evals", 'Questions of law.\n[[relevant_tags: ["halacha"]]]'),
    ("Translation evals", '[[relevant_tags: [ "translation" ] ]]'),
    ("Sources and Hebrew", '[[relevant_tags: [\n  "sources",\n  "hebrew"\n]]]'),
    ("Off-topic guardrail", '[[relevant_tags:["off-topic"]]]'),
    ("Broken marker", '[[relevant_tags: ["halacha",]]]'),
    ("Numbers marker", "[[relevant_tags: [1, 2]]]"),
    ("Unknown tag", '[[relevant_tags: ["no-such-tag"]]]'),
    ("No marker", "Hand-curated regression set"),
    ("No description", None),
    ("Empty description", ""),
]

# Question/answer pairs per intent. The sandbox's Claude tags by keyword, so the words here decide the
# labels: English refs such as "Shabbat 21b" deliberately add "halacha" to some non-law turns.
HALACHA_EN = [
    (
        "Is it permitted to turn on a light on Shabbat?",
        "Most poskim forbid it as a form of kindling (Mishneh Torah, Hilchot Shabbat 12:1); many use a timer instead.",
    ),
    (
        "Do I need to wash my hands before eating bread, according to halacha?",
        "Yes: Shulchan Arukh, Orach Chayim 158:1 requires washing before bread, with a blessing for a kezayit or more.",
    ),
    (
        "How long do I wait between meat and milk to keep kosher?",
        "Shulchan Arukh, Yoreh De'ah 89:1 rules six hours; some communities wait three hours or one, by custom.",
    ),
    (
        "Can I carry my house key outside on Shabbat if there is no eruv?",
        "Without an eruv, carrying into a public domain is forbidden on Shabbat (Mishneh Torah, Hilchot Shabbat 12:8). "
        "Some people wear a key built into a belt instead.",
    ),
    (
        "What is the halacha about lighting Hanukkah candles in a window?",
        "Shabbat 21b puts the lamp at the door facing the street (Shulchan Arukh, Orach Chayim 671:5); "
        "a window facing the street is a common alternative.",
    ),
]
TRANSLATABLE = [
    ("Genesis 1:1", "In the beginning God created the heaven and the earth."),
    ("Exodus 12:2", "This month shall be unto you the beginning of months."),
    ("Deuteronomy 6:4", "Hear, O Israel: the LORD is our God, the LORD is one."),
    ("Pirkei Avot 1:14", "If I am not for myself, who will be for me? And if not now, when?"),
    ("Berakhot 2a", "From when may one recite Shema in the evening? From when the priests enter to eat their teruma."),
    ("Psalms 23:1", "The LORD is my shepherd; I shall not want."),
]
RASHI = [
    ("Genesis 1:1", "Rabbi Isaac said the Torah should have begun with Exodus 12:2, the first commandment to Israel."),
    ("Exodus 12:2", "God showed Moses the new moon and said: when it looks like this, sanctify it."),
]
TRANSLATION_ASKS = [
    "Can you translate {ref} into English?",
    "How would you translate {ref}?",
    "Please translate {ref} word for word.",
]
SOURCES = [  # (idea, ref, what the ref says)
    ("the miracle of the oil on Hanukkah", "Shabbat 21b", "one cruse of oil burned for eight days"),
    ("the oven of Akhnai story", "Bava Metzia 59b", "the sages overrule a heavenly voice"),
    ("'whoever saves a single life saves an entire world'", "Sanhedrin 37a", "Adam was created alone to teach it"),
    ("the four questions at the seder", "Pesachim 116a", "the Mishnah lists what the child asks"),
    ("the earliest time for the evening Shema", "Berakhot 2a", "the first Mishnah of the Talmud asks it"),
    ("why the Torah starts with creation", "Rashi on Genesis 1:1", "Rabbi Isaac points to Exodus 12:2"),
    ("'if not now, when?'", "Pirkei Avot 1:14", "Hillel says it"),
]
SOURCE_ASKS = [
    "What's the source for {idea}?",
    "Where in the Talmud is {idea} discussed?",
    "Which gemara talks about {idea}?",
    "Can you give me a source for {idea}?",
]
OFF_TOPIC_EN = [
    (
        "What's the weather in Tel Aviv tomorrow?",
        "I can't check the weather; I'm here to help with texts in the Sefaria library.",
    ),
    (
        "What will the weather be in Jerusalem this Shabbat?",
        "I can't forecast the weather, but I'm glad to help you study this week's Torah portion.",
    ),
    (
        "Write a Python function that reverses a string.",
        "I'm a guide to Jewish texts rather than a coding assistant, so I'll leave the Python aside.",
    ),
    (
        "Should I buy Teva stock right now?",
        "I can't give stock advice, but Bava Metzia 49b has a lot to say about fair prices.",
    ),
    (
        "Give me a recipe for challah.",
        "I don't have recipes, but Numbers 15:20 is where separating challah from the dough comes from.",
    ),
]
UNTAGGED_EN = [  # checked against the keyword rules: none of these should get a tag
    (
        "Tell me about the history of the Sefaria project.",
        "Sefaria was founded in 2011 by Brett Lockspeiser and Joshua Foer to build a free, open library of "
        "Jewish texts.",
    ),
    (
        "What does the word 'midrash' mean?",
        "Midrash, from d-r-sh 'to seek', names rabbinic interpretation of the Bible, as in Genesis Rabbah.",
    ),
    (
        "Who was Maimonides?",
        "Maimonides (1138-1204) was a philosopher, physician and codifier, author of the Mishneh Torah.",
    ),
    (
        "How is the Mishnah organized?",
        "The Mishnah has six orders and 63 tractates, edited by Rabbi Judah the Prince around 200 CE.",
    ),
    ("What is the Zohar?", "The Zohar is the central work of Kabbalah, a mystical Aramaic commentary on the Torah."),
]
HALACHA_HE = [
    ("האם מותר להדליק אור בשבת?", "רוב הפוסקים אוסרים (משנה תורה, הלכות שבת יב:א); רבים משתמשים בשעון שבת."),
    ("מה ההלכה לגבי נטילת ידיים לפני אכילת לחם?", "לפי שולחן ערוך, אורח חיים קנח:א, נוטלים ידיים ומברכים."),
    ("לפי ההלכה, כמה שעות מחכים בין בשר לחלב?", "שולחן ערוך, יורה דעה פט:א פוסק שש שעות; יש הנוהגים שלוש שעות או אחת."),
    ("מותר לטלטל מפתח בשבת כשאין עירוב?", "בלי עירוב אסור להוציא לרשות הרבים (משנה תורה, הלכות שבת יב:ח)."),
]
TRANSLATABLE_HE = {
    "בראשית א:א": "Genesis 1:1",
    "שמות יב:ב": "Exodus 12:2",
    "דברים ו:ד": "Deuteronomy 6:4",
    "תהילים כג:א": "Psalms 23:1",
}
TRANSLATION_ASKS_HE = ["תרגם לי את {ref} לאנגלית", "אפשר לתרגם את {ref}?", "איך לתרגם את {ref} מילה במילה?"]
SOURCES_HE = [
    ("נס פך השמן בחנוכה", 'שבת כא ע"ב'),
    ("תנורו של עכנאי", 'בבא מציעא נט ע"ב'),
    ('"כל המקיים נפש אחת"', 'סנהדרין לז ע"א'),
    ('"אם אין אני לי מי לי"', "פרקי אבות א:יד"),
]
SOURCE_ASKS_HE = ["מה המקור ל{idea}?", "אפשר מקור ל{idea}?", "איפה נמצא המקור ל{idea}?"]
HALACHA_SOURCES_HE = [
    ("מה המקור בגמרא להדלקת נרות שבת?", 'שבת כה ע"ב: "הדלקת נר בשבת חובה", וכך נפסק בשולחן ערוך, אורח חיים רסג:א.'),
]
PLAIN_HE = [  # Hebrew with none of the keywords: only the "hebrew" tag applies
    ("מה זה מדרש?", 'מדרש, מהשורש ד-ר-ש, הוא פרשנות חז"ל למקרא, כמו בבראשית רבה.'),
    ('מי היה הרמב"ם?', 'הרמב"ם (1138-1204) היה פילוסוף, רופא ופוסק, מחבר משנה תורה ומורה נבוכים.'),
    ("ספר לי על ספריא", "ספריא היא ספרייה חופשית ופתוחה של טקסטים יהודיים, שנוסדה בשנת 2011."),
]
OFF_TOPIC_HE = [
    ("כתוב לי פונקציה ב-Python שממיינת רשימה", "אני עוזר ללימוד טקסטים יהודיים ולא לכתיבת קוד Python."),
    ("איך כותבים לולאה ב-python?", "זו שאלה על python, ואני כאן לטקסטים יהודיים. אולי נלמד משהו מפרקי אבות?"),
]
GREETINGS = {"en": ("Hi!", "Hello! What would you like to learn today?"), "he": ("שלום", "שלום! במה אוכל לעזור?")}


def seed(state, now: datetime) -> None:
    """Fill an empty sandbox state with tags, datasets and ~300 conversation traces created in the 30 hours
    before `now`."""
    rng = random.Random(RNG_SEED)
    _seed_tags(state)
    _seed_datasets(state)
    _seed_traces(state, now, rng)


def _seed_tags(state) -> None:
    from braintrust_ops_sandbox.constants import OTHER_PROJECT_ID  # lazily, so importing this module costs nothing

    for name, description in TAGGABLE_TAGS + UNTAGGABLE_TAGS:
        state.add_tag(name, description)
    state.add_tag("other-project-tag", "dataset-tagging", project_id=OTHER_PROJECT_ID)


def _seed_datasets(state) -> None:
    from braintrust_ops_sandbox.constants import OTHER_PROJECT_ID

    for name, description in DATASETS:
        state.add_dataset(name, description)
    state.add_dataset("Other project evals", '[[relevant_tags: ["halacha"]]]', project_id=OTHER_PROJECT_ID)


# One builder per intent; each returns (user text, answer) and takes the rng so choices stay seeded.
def _translation_en(rng):
    if rng.random() < 0.25:  # a commentary request: tagged translation and sources together
        ref, text = rng.choice(RASHI)
        return f"Please translate Rashi on {ref}.", f'Rashi on {ref}, in English: "{text}"'
    ref, text = rng.choice(TRANSLATABLE)
    return rng.choice(TRANSLATION_ASKS).format(ref=ref), f'A standard translation of {ref} is: "{text}"'


def _sources_en(rng):
    idea, ref, detail = rng.choice(SOURCES)
    return rng.choice(SOURCE_ASKS).format(idea=idea), f"The classic place is {ref}, where {detail}."


def _translation_he(rng):
    ref_he, ref_en = rng.choice(list(TRANSLATABLE_HE.items()))
    english = dict(TRANSLATABLE)[ref_en]
    return rng.choice(TRANSLATION_ASKS_HE).format(ref=ref_he), f'התרגום המקובל של {ref_he}: "{english}"'


def _sources_he(rng):
    idea, ref = rng.choice(SOURCES_HE)
    return rng.choice(SOURCE_ASKS_HE).format(idea=idea), f"המקור הוא {ref}. אפשר לקרוא את הטקסט המלא בספריא."


def _pick(pairs):
    return lambda rng: rng.choice(pairs)


# (locale, builder, how many): 180 English and 120 Hebrew turns, 30 off-topic and 15 untagged among them.
TURN_PLAN = [
    ("en", _pick(HALACHA_EN), 45),
    ("en", _translation_en, 35),
    ("en", _sources_en, 54),
    ("en", _pick(OFF_TOPIC_EN), 25),
    ("en", _pick(UNTAGGED_EN), 15),
    ("he", _pick(HALACHA_HE), 35),
    ("he", _translation_he, 25),
    ("he", _sources_he, 30),
    ("he", _pick(HALACHA_SOURCES_HE), 5),
    ("he", _pick(PLAIN_HE), 20),
    ("he", _pick(OFF_TOPIC_HE), 5),
]


def _long_answer() -> str:
    """About 5,000 characters: the size of answer that strains prompts, CSV cells and admin pages."""
    parts = [
        "Shabbat candles are lit before sunset on Friday; Shabbat 25b calls lighting a lamp for Shabbat an obligation.",
        "Shulchan Arukh, Orach Chayim 263:1 makes the obligation personal, and the custom is two candles.",
        "The blessing is said after lighting, so that the blessing does not itself begin Shabbat (Orach Chayim 263:5).",
        "Rashi on Shabbat 25b explains the lamp as peace in the home: the family is not left to stumble in the dark.",
        "Mishneh Torah, Hilchot Shabbat 5:1 lists it among the things that honor Shabbat.",
    ]
    sections = []
    while sum(len(section) for section in sections) < 5000:
        sections.append(f"{len(sections) + 1}. {parts[len(sections) % len(parts)]}")
    return "\n".join(sections)


def _edge_turns():
    """Turns that break naive code: emoji, a huge answer, CSV-hostile text, formula-like input, no answer."""
    return [
        (
            "en",
            "Shabbat shalom! 🕯️🕯️ Why do we light two candles?",
            "They recall 'remember' (Exodus 20:8) and 'keep' (Deuteronomy 5:12); see Orach Chayim 263:1. 🙂",
        ),
        ("en", "Can you give me a detailed overview of the laws of Shabbat candles, with sources?", _long_answer()),
        (
            "en",
            'Translate "Hear, O Israel" for me, please.',
            'Deuteronomy 6:4 reads:\n"Hear, O Israel: the LORD is our God, the LORD is one."\n'
            'Rashi, on the same verse, says: "the LORD, who is now our God, will in the future be the one God."',
        ),
        (
            "en",
            '=IMPORTXML("https://www.sefaria.org/Genesis.1.1") can you translate Genesis 1:1?',
            'A standard translation of Genesis 1:1 is: "In the beginning God created the heaven and the earth."',
        ),
        (
            "en",
            "+1 to your last answer! What is the source for saying Hallel on Hanukkah?",
            "Arakhin 10a lists the eighteen days with full Hallel, all eight days of Hanukkah among them.",
        ),
        ("en", "What does Rashi say on Exodus 12:2?", None),  # the model call failed: a trace with no output
    ]


def _planned_turns(rng):
    turns = [(locale, *build(rng)) for locale, build, count in TURN_PLAN for _ in range(count)]
    turns += _edge_turns()
    rng.shuffle(turns)  # interleave intents and languages through the day
    return turns


def _conversation(rng, locale, user_text):
    """The input as the chatbot logs it; some turns carry an earlier exchange (a greeting, so it adds no tags)."""
    messages = []
    if rng.random() < 0.15:
        greeting, reply = GREETINGS[locale]
        messages += [{"role": "user", "content": greeting}, {"role": "assistant", "content": reply}]
    messages.append({"role": "user", "content": user_text})
    return {"messages": messages}


def _metadata(rng, locale):
    return {
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "locale": locale,
        "client": "web" if rng.random() < 0.7 else "mobile",
        "model": MODEL,
    }


def _created_times(rng, now, count):
    """Even slots over SPAN, newest first, each jittered within its slot so times never collide or leave the span."""
    slot = SPAN / count
    return [now - slot * (index + 0.5 + rng.uniform(-0.45, 0.45)) for index in range(count)]


def _seed_traces(state, now, rng) -> None:
    turns = _planned_turns(rng)
    traces = [
        {
            "input": _conversation(rng, locale, user_text),
            "output": answer,
            "created": created,
            "children": rng.randint(1, 3),
            "metadata": _metadata(rng, locale),
        }
        for (locale, user_text, answer), created in zip(turns, _created_times(rng, now, len(turns)), strict=True)
    ]
    # Ingested oldest first, as a live chatbot's logs arrive: `_xact_id` order follows `created` order.
    for trace in sorted(traces, key=lambda trace: trace["created"]):
        state.add_trace(trace.pop("input"), trace.pop("output"), **trace)
