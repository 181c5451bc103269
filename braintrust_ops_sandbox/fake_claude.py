"""The sandbox's Claude: a deterministic keyword rule answering the forced tool call, plus scripted replies.

The rule stands in for the model so tests know which tags each text gets. A test can script the next
replies instead (a malformed tool input, plain text, a truncated answer) with ``ReplyQueue.push``.
"""

import json
import re
import threading
from collections import deque
from itertools import count
from typing import Any

from braintrust_ops_sandbox import claude_tools

HEBREW_LETTER = re.compile(r"[\u05d0-\u05ea]")
KEYWORDS = {
    "halacha": ("shabbat", "kosher", "halacha", "הלכה", "שבת"),
    "translation": ("translate", "תרגם"),
    "sources": ("talmud", "rashi", "source", "gemara", "מקור"),
    "off-topic": ("weather", "python", "stock", "recipe"),
}
MAX_TAGS = 3
_message_numbers = count(1)


def labels_for(text: str, allowed: list[str]) -> list[str]:
    """The allowed tags the rule gives ``text``, in the allowed order, at most three.

    A tag the rule does not know matches when its name appears in the text, so tests can use any names.
    """
    lowered = text.lower()
    chosen = []
    for name in allowed:
        if name == "hebrew":
            hit = bool(HEBREW_LETTER.search(text))
        elif name in KEYWORDS:
            hit = any(word in lowered for word in KEYWORDS[name])
        else:
            hit = name.lower() in lowered
        if hit:
            chosen.append(name)
    return chosen[:MAX_TAGS]


def estimate_tokens(*parts: Any) -> int:
    text = "".join(part if isinstance(part, str) else json.dumps(part, ensure_ascii=False) for part in parts)
    return max(1, len(text) // 4)


class ReplyQueue:
    """Scripted replies, each used once, oldest first: {"tool_input": ...} | {"text": ...}, optional "stop_reason"."""

    def __init__(self):
        self._lock = threading.Lock()
        self._replies: deque[dict] = deque()

    def push(self, reply: dict) -> None:
        with self._lock:
            self._replies.append(reply)

    def push_front(self, reply: dict) -> None:
        """Put a reply back to be the next one (a request refused after taking it did not use it)."""
        with self._lock:
            self._replies.appendleft(reply)

    def __len__(self) -> int:
        with self._lock:
            return len(self._replies)

    def pop(self) -> dict | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def clear(self) -> None:
        with self._lock:
            self._replies.clear()


REQUIRED_FIELDS = ("model", "max_tokens", "messages")


def request_problem(body: dict) -> str | None:
    """The 400 ``invalid_request_error`` message the Messages API would answer ``body`` with, or None.

    One function for the messages route and for batched requests, so both refuse the same bodies alike."""
    missing = [name for name in REQUIRED_FIELDS if name not in body]
    if missing:
        return f"missing required fields: {', '.join(missing)}"
    try:
        claude_tools.check_request(body)
    except claude_tools.InvalidTools as exc:
        return str(exc)
    return None


REPLY_KEYS = frozenset({"tool_input", "text", "stop_reason"})


def check_reply(reply: object) -> dict:
    """``reply`` if it is a scripted reply the queue can play, else ValueError saying why."""
    if not isinstance(reply, dict):
        raise ValueError('a scripted reply is an object: {"tool_input": ...} or {"text": ...}')
    unknown = set(reply) - REPLY_KEYS
    if unknown:
        raise ValueError(f"unknown keys in a scripted reply: {sorted(unknown)}; allowed: {sorted(REPLY_KEYS)}")
    if ("tool_input" in reply) == ("text" in reply):
        raise ValueError("a scripted reply has exactly one of 'tool_input' and 'text'")
    if "text" in reply and not isinstance(reply["text"], str):
        raise ValueError("'text' of a scripted reply is a string")
    # Any string: a test may script a stop reason newer than the SDK's list (anthropic.types.StopReason).
    if "stop_reason" in reply and not isinstance(reply["stop_reason"], (str, type(None))):
        raise ValueError("'stop_reason' of a scripted reply is a string or null")
    return reply


def _user_text(body: dict) -> str:
    texts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(block.get("text", "") for block in content if isinstance(block, dict))
    return "\n".join(texts)


def _forced_tool(body: dict) -> dict | None:
    choice = body.get("tool_choice") or {}
    tools = body.get("tools") or []
    if choice.get("type") == "tool":
        return next((tool for tool in tools if tool.get("name") == choice.get("name")), None)
    return tools[0] if tools else None


def _allowed_tags(tool: dict | None) -> list[str]:
    try:
        return list(tool["input_schema"]["properties"]["tags"]["items"]["enum"])
    except (KeyError, TypeError):
        return []


def message_reply(body: dict, scripted: dict | None) -> dict:
    """A Messages API reply to ``body``: the scripted one if given, else the keyword rule through the forced tool."""
    tool = _forced_tool(body)
    tool_name = tool.get("name", "tool") if tool else "tool"
    text = _user_text(body)
    number = next(_message_numbers)
    if scripted is not None and "text" in scripted:
        content = [{"type": "text", "text": scripted["text"]}]
        stop_reason = scripted.get("stop_reason", "end_turn")
    else:
        rule = {"tags": labels_for(text, _allowed_tags(tool))}
        tool_input = scripted.get("tool_input", rule) if scripted is not None else rule
        content = [{"type": "tool_use", "id": f"toolu_sandbox_{number:06d}", "name": tool_name, "input": tool_input}]
        stop_reason = (scripted or {}).get("stop_reason", "tool_use")
    return {
        "id": f"msg_sandbox_{number:06d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-sandbox"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": estimate_tokens(body.get("system") or "", text, body.get("tools") or []),
            "output_tokens": estimate_tokens(content),
        },
    }


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}
