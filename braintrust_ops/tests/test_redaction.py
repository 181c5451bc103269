from braintrust_ops.redaction import REDACTED, SecretRedactor, redact


def test_secret_is_redacted_inside_nested_values():
    event = {
        "event": "failed",
        "error": "key sk-redaction-key-for-tests-123456 refused",
        "extra": [("Bearer sk-redaction-key-for-tests-123456",)],
    }
    assert redact(event, ["sk-redaction-key-for-tests-123456"]) == {
        "event": "failed",
        "error": f"key {REDACTED} refused",
        "extra": [(f"Bearer {REDACTED}",)],
    }


def test_processor_ignores_empty_and_too_short_secrets():
    processor = SecretRedactor([None, "", "abc"])
    event = {"event": "abc is a word"}
    assert processor(None, "info", event) == {"event": "abc is a word"}


def test_processor_redacts_every_configured_secret():
    processor = SecretRedactor(["bt-redaction-key-for-tests-0001", "sk-redaction-key-for-tests-0002"])
    event = processor(
        None, "info", {"event": "x", "a": "bt-redaction-key-for-tests-0001", "b": "sk-redaction-key-for-tests-0002!"}
    )
    assert event == {"event": "x", "a": REDACTED, "b": f"{REDACTED}!"}


def test_an_exception_carrying_a_secret_is_logged_as_redacted_text():
    assert (
        redact(RuntimeError("Bearer bt-redaction-key-for-tests-0001 refused"), ["bt-redaction-key-for-tests-0001"])
        == f"Bearer {REDACTED} refused"
    )


def test_a_secret_of_exactly_the_minimum_length_is_redacted():
    assert SecretRedactor(["12345678"])(None, "info", {"event": "key 12345678"}) == {"event": f"key {REDACTED}"}


def test_a_secret_containing_another_is_redacted_whole_whatever_the_order_given():
    redactor = SecretRedactor(["secret-1234", "secret-1234-and-more"])
    assert redactor(None, "info", {"event": "secret-1234-and-more"}) == {"event": REDACTED}


def test_a_secret_containing_another_in_its_middle_is_redacted_whole():
    # The shorter one sorts after the longer alphabetically: only an order by length redacts the longer first.
    redactor = SecretRedactor(["secret-1234", "key-secret-1234-x"])
    assert redactor(None, "info", {"event": "key-secret-1234-x"}) == {"event": REDACTED}
