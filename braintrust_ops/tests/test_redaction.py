import ast
import json
import re
import traceback
from typing import NamedTuple
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops import redaction
from braintrust_ops.redaction import REDACTED, SecretRedactor, redact, redact_exception, secret_forms


@pytest.fixture(autouse=True)
def _forms_worked_out_afresh():
    # secret_forms caches its answer for the process: each test must check the forms the code works out now,
    # not ones an earlier test left (mutmut forks each mutant from a process that ran every test once).
    secret_forms.cache_clear()


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


# --- every form a secret can take on its way back from a server --------------------------------------------

KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~"
# Realistic keys: a prefix (Anthropic sk-ant-api03-, Braintrust sk-), then url-safe or standard base64.
secrets = st.builds(
    lambda prefix, kind, body: prefix + kind + body,
    st.sampled_from(["sk-", "bt-", "key", "K"]),
    st.sampled_from(["", "ant-api03-"]),
    st.text(KEY_ALPHABET, min_size=8, max_size=64),
)
surrounding = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group().lower(), text)


# (encode, decode) pairs: how a server or a library may wrap the text that carries the key.
WRAPPINGS = {
    "json": (json.dumps, json.loads),
    "json_unicode": (lambda text: json.dumps(text, ensure_ascii=False), json.loads),
    "json_object": (
        lambda text: json.dumps({"error": {"message": text}}),
        lambda text: json.loads(text)["error"]["message"],
    ),
    "json_escaped_slashes": (lambda text: json.dumps(text).replace("/", "\\/"), json.loads),
    "repr": (repr, ast.literal_eval),
    "url": (lambda text: quote(text, safe=""), unquote),
    "url_lower_hex": (lambda text: _lower_hex(quote(text, safe="")), unquote),
    "url_path": (quote, unquote),
    "form": (quote_plus, unquote_plus),
}


@given(
    secret=secrets,
    before=surrounding,
    after=surrounding,
    wrappings=st.lists(st.sampled_from(sorted(WRAPPINGS)), max_size=2),
    header=st.sampled_from(["Authorization: Bearer ", "x-api-key: ", "", "key="]),
)
def test_no_secret_survives_any_wrapping_nested_in_any_text(secret, before, after, wrappings, header):
    text = f"{before}{header}{secret}{after}"
    for name in wrappings:
        text = WRAPPINGS[name][0](text)
    redacted = redact(text, [secret])
    assert secret not in redacted
    for name in reversed(wrappings):
        redacted = WRAPPINGS[name][1](redacted)  # still decodes: the redaction cut no escape in half
        assert secret not in redacted
    assert REDACTED in redacted


@given(secret=secrets, other=secrets)
def test_redaction_leaves_text_without_the_secret_unchanged(secret, other):
    text = f"HTTP 400: {other} is not valid"
    if secret not in text and all(form not in text for form in (quote(secret, safe=""), json.dumps(secret)[1:-1])):
        assert redact(text, [secret]) == text


def test_an_sdk_error_and_the_errors_behind_it_are_redacted_in_place():
    key = "sk-redaction-key-for-tests-42"

    class SDKError(Exception):
        def __init__(self, message, body):
            super().__init__(message)
            self.body = body
            self.message = message

    cause = SDKError(f"Error code: 400 - {{'error': 'you sent {key}'}}", {"error": f"you sent {key}"})
    try:
        try:
            raise cause
        except SDKError as exc:
            raise RuntimeError(f"wrapped: {json.dumps(key)}") from exc
    except RuntimeError as error:
        redact_exception(error, [key])
        assert key not in str(error) and key not in str(error.__cause__)
        assert error.__cause__.body == {"error": f"you sent {REDACTED}"} and key not in error.__cause__.message


# --- each form exactly, one wrapping or two: the secret is replaced whole, and only it -----------------------

# A realistic key (base64's "/", "+", "=") and any other secret a host's logging may pass: non-ASCII, both
# quotes, a backslash, a space. The placeholder is one no wrapping changes, so the expected text is the
# wrapped text with the placeholder's place redacted; the text around holds both quotes, as the second
# secret does, so that repr quotes the text alike whichever it holds.
EXAMPLE_SECRETS = ["sk-ant-api03-Ab/cD+eF=gH_iJ-kL", "pässwört 'x' \"y\" a\\b/c"]
PLACEHOLDER = "PLACEHOLDER0123456789"


@pytest.mark.parametrize("secret", EXAMPLE_SECRETS)
@pytest.mark.parametrize(
    "wrappings", [[name] for name in sorted(WRAPPINGS)] + [[a, b] for a in sorted(WRAPPINGS) for b in sorted(WRAPPINGS)]
)
def test_a_wrapped_secret_is_replaced_whole_and_the_text_around_it_is_left_as_it_was(secret, wrappings):
    def wrap(text):
        for name in wrappings:
            text = WRAPPINGS[name][0](text)
        return text

    expected = wrap(f"key '{PLACEHOLDER}' \"refused\"").replace(PLACEHOLDER, REDACTED)
    assert redact(wrap(f"key '{secret}' \"refused\""), [secret]) == expected


def test_an_error_raised_while_handling_another_has_the_earlier_one_redacted_too():
    key = "sk-redaction-key-for-tests-42"
    try:
        try:
            raise ValueError(f"you sent {key}")
        except ValueError:
            raise RuntimeError("while handling it") from None
    except RuntimeError as caught:
        error = caught
    error.__suppress_context__ = False  # a plain implicit chain: no __cause__, the earlier error as context
    redact_exception(error, [key])
    assert error.__cause__ is None and str(error.__context__) == f"you sent {REDACTED}"


def test_an_exception_message_is_redacted_in_place_and_other_arguments_are_kept_as_they_are():
    key = "sk-redaction-key-for-tests-42"
    reason = ConnectionError("host unreachable")  # requests' errors carry urllib3's; callers read its reason
    error = RuntimeError(f"refused {key}", 401, reason)
    redact_exception(error, [key])
    assert error.args == (f"refused {REDACTED}", 401, reason) and error.args[2] is reason


def test_an_exception_chain_that_loops_back_on_itself_is_redacted_once_and_the_call_returns():
    key = "sk-redaction-key-for-tests-42"
    first, second = RuntimeError(f"first {key}"), RuntimeError(f"second {key}")
    first.__cause__, second.__cause__ = second, first
    redact_exception(first, [key])
    assert (str(first), str(second)) == (f"first {REDACTED}", f"second {REDACTED}")


# --- exceptions held inside exceptions -----------------------------------------------------------------------


def test_an_exception_given_as_another_exceptions_argument_is_redacted_in_place_and_kept_an_exception():
    # requests wraps urllib3's MaxRetryError, which holds the transport's error as its reason; str() of each
    # shows the text of the one it holds, so a key in the innermost reaches the printed message.
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    key = "sk-redaction-key-for-tests-42"
    reason = NewConnectionError(None, f"refused; you sent Bearer {key}")
    retries = MaxRetryError(None, "/v1/btql", reason=reason)
    error = RequestsConnectionError(retries)
    assert key in str(error)
    redact_exception(error, [key])
    assert key not in str(error) and key not in repr(error)
    assert error.args[0] is retries and retries.reason is reason
    assert str(reason).endswith(f"you sent Bearer {REDACTED}")


def test_each_exception_of_a_group_is_redacted_in_place():
    key = "sk-redaction-key-for-tests-42"
    inner = ValueError(f"you sent {key}")
    group = ExceptionGroup("two failures", [inner, KeyError("other")])
    redact_exception(group, [key])
    assert group.exceptions[0] is inner and str(inner) == f"you sent {REDACTED}"
    assert key not in "".join(traceback.format_exception(group))


def test_a_body_attribute_that_is_no_text_is_left_as_the_same_object():
    key = "sk-redaction-key-for-tests-42"
    response = object()  # an SDK's response: not ours to rebuild
    error = RuntimeError(f"refused {key}")
    error.body = response
    redact_exception(error, [key])
    assert error.body is response and str(error) == f"refused {REDACTED}"


def test_a_named_tuple_argument_is_kept_as_it_is():
    class Where(NamedTuple):
        host: str
        port: int

    where = Where("api.example.test", 443)
    error = RuntimeError("refused", where)
    redact_exception(error, ["sk-redaction-key-for-tests-42"])
    assert error.args[1] is where


def test_a_note_added_to_an_exception_is_redacted_as_its_message_is():
    key = "sk-redaction-key-for-tests-42"
    error = RuntimeError("refused")
    error.add_note(f"the request sent Bearer {key}")
    redact_exception(error, [key])
    assert error.__notes__ == [f"the request sent Bearer {REDACTED}"]
    assert key not in "".join(traceback.format_exception(error))


def test_an_os_errors_text_and_file_names_are_redacted_where_str_reads_them():
    key = "sk-redaction-key-for-tests-42"
    error = PermissionError(13, f"denied for {key}", f"/run/{key}", None, f"/tmp/{key}")  # None: winerror
    assert key in str(error)
    redact_exception(error, [key])
    assert key not in str(error) and error.errno == 13
    assert error.filename == f"/run/{REDACTED}" and error.filename2 == f"/tmp/{REDACTED}"


def test_exceptions_an_error_keeps_in_a_list_attribute_are_redacted_in_place():
    key = "sk-redaction-key-for-tests-42"
    earlier = [ConnectionError(f"attempt 1 sent {key}"), TimeoutError(f"attempt 2 sent {key}")]
    error = RuntimeError("gave up after 2 attempts")
    error.attempts = earlier  # a retry loop's history
    redact_exception(error, [key])
    assert error.attempts is earlier and [str(each) for each in earlier] == [
        f"attempt 1 sent {REDACTED}",
        f"attempt 2 sent {REDACTED}",
    ]


def test_an_exception_that_holds_itself_still_has_everything_else_it_holds_redacted():
    key = "sk-redaction-key-for-tests-42"
    inner = ValueError(f"you sent {key}")
    error = RuntimeError("wrapped", inner)
    error.__cause__ = error  # met again before what it holds: seen, and passed over, not the end of the walk
    redact_exception(error, [key])
    assert str(inner) == f"you sent {REDACTED}"


def test_a_chain_is_redacted_up_to_the_bound_on_the_work_and_the_call_returns():
    key = "sk-redaction-key-for-tests-42"
    chain = [RuntimeError(f"level {index} sent {key}") for index in range(redaction._MAX_EXCEPTIONS + 1)]
    for outer, inner in zip(chain, chain[1:], strict=False):
        outer.__cause__ = inner
    redact_exception(chain[0], [key])
    assert all(key not in str(error) for error in chain[:-1])
    assert key in str(chain[-1])  # one past the bound: a tangle no real error makes


class _Built:
    """How one exception came to hold the next in a generated tangle."""

    WAYS = ("argument", "cause", "context", "attribute", "body", "in a list", "group", "history", "os error")


def _tangle(ways: list[str], key: str) -> tuple[BaseException, list[BaseException]]:
    """A chain of exceptions, each holding the next the given way, every one of them quoting the key."""
    made: list[BaseException] = [RuntimeError(f"innermost {key}")]
    for index, way in enumerate(ways):
        inner = made[-1]
        message = f"level {index} sent {json.dumps(key)}"
        if way == "argument":
            outer: BaseException = RuntimeError(message, inner)
        elif way == "group":
            # A group's own message is read-only (CPython), and groups are made by code, not from a
            # server's reply: only the exceptions it holds quote one.
            outer = ExceptionGroup(f"level {index}", [inner])
        elif way == "in a list":
            outer = RuntimeError(message, [inner, {"key": key}])
        elif way == "os error":
            outer = OSError(5, message, f"/run/{key}")
            outer.__cause__ = inner
        else:
            outer = RuntimeError(message)
            if way == "cause":
                outer.__cause__ = inner
            elif way == "context":
                outer.__context__ = inner
            elif way == "attribute":
                outer.reason = inner
            elif way == "history":
                outer.attempts = [inner]
                outer.add_note(f"attempted with {key}")
            else:
                outer.body = {"error": key, "inner": inner}
        made.append(outer)
    return made[-1], made


@given(ways=st.lists(st.sampled_from(_Built.WAYS), max_size=12), key=secrets)
def test_no_secret_survives_in_any_exception_however_they_hold_each_other(ways, key):
    outermost, made = _tangle(ways, key)
    redact_exception(outermost, [key])
    for error in made:
        assert key not in str(error) and key not in repr(error)
        assert key not in json.dumps(getattr(error, "body", {}), default=repr)
    assert key not in "".join(traceback.format_exception(outermost))
