"""The small project's logs (the ``small_project`` fixture), and what a reviewer does to one in Braintrust."""

#: small_project's logs, and the tags the sandbox's Claude gives them: halacha, translation, none.
COOK, TRANSLATE, WEATHER = (
    "Is it permitted to cook on Shabbat?",
    "Please translate Genesis 1:1",
    "What's the weather in Jerusalem?",
)


def person_sets_tags(sandbox, text: str, tags: list[str], **fields) -> None:
    """What a reviewer does in Braintrust's log view: the log's tags changed, so it gets a new _xact_id."""
    log = next(row for row in sandbox.state.logs() if row["input"] == text)
    sandbox.state.update_log(log["id"], tags=tags, **fields)
