"""Refusals compared by their shape: the same error quoting different logs matches, another error does not."""

from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.error_signature import MESSAGE_LENGTH, message_shape, refusal_signature, reply_signature
from braintrust_ops.tests.strategies import text

numbers = st.integers(min_value=0, max_value=10**12).map(str)
# What a message quotes from a request: anything but the quote that closes it.
quoted = text.map(lambda value: value.replace("'", ""))


@given(first=numbers, second=numbers, model=st.sampled_from(["claude-haiku-4-5", "claude-haiku-4-5-20251001"]))
def test_a_max_tokens_refusal_has_one_shape_whatever_numbers_it_quotes(first, second, model):
    def refusal(tokens: str) -> str:
        message = f"max_tokens: {tokens} > 64000, which is the maximum allowed number of output tokens for {model}"
        return refusal_signature(status=400, error_type="invalid_request_error", message=message)

    assert refusal(first) == refusal(second)


@given(first=quoted, second=quoted)
def test_a_refusal_quoting_each_logs_content_has_one_shape(first, second):
    def refusal(value: str) -> str:
        return refusal_signature(
            status=400, error_type="invalid_request_error", message=f"messages.0.content: invalid value '{value}'"
        )

    assert refusal(first) == refusal(second)


@given(status=st.integers(100, 599), error_type=text, message=text)
def test_any_refusal_has_a_one_line_signature_of_bounded_length(status, error_type, message):
    signature = refusal_signature(status=status, error_type=error_type, message=message)
    assert "\n" not in signature and "\r" not in signature
    assert signature == refusal_signature(status=status, error_type=error_type, message=message)
    assert len(message_shape(message)) <= MESSAGE_LENGTH


@given(message=text, status=st.integers(400, 499), other=st.integers(400, 499))
def test_refusals_of_another_status_never_match(message, status, other):
    if status != other:
        assert refusal_signature(status=status, error_type="e", message=message) != refusal_signature(
            status=other, error_type="e", message=message
        )


def test_refusals_of_another_type_or_wording_do_not_match():
    strict = "tools.0.custom.strict: Extra inputs are not permitted"
    assert refusal_signature(status=400, error_type="invalid_request_error", message=strict) != refusal_signature(
        status=400, error_type="invalid_request_error", message="prompt is too long: 210000 tokens > 200000 maximum"
    )
    assert refusal_signature(status=400, error_type="invalid_request_error", message=strict) != refusal_signature(
        status=400, error_type="api_error", message=strict
    )


def test_an_apostrophe_inside_a_word_is_not_a_quote():
    assert message_shape("the log's text, not 'quoted' here") == "the log's text, not '…' here"


def test_a_reply_problem_is_never_taken_for_a_refusal():
    problem = "Claude's reply was cut off at max_tokens"
    assert reply_signature(problem) == "reply: Claude's reply was cut off at max_tokens"
    assert reply_signature(problem) != refusal_signature(status=400, error_type="reply", message=problem)
