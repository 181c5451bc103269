"""The Anthropic boundary: one forced tool call per log, through the official SDK.

The SDK retries 429, 5xx and 529 itself and honours retry-after; this module only sets its bounds
and translates what is left into the app's exceptions.
"""

import time
from dataclasses import dataclass
from typing import Any

import anthropic

from braintrust_ops.exceptions import (
    AuthenticationFailed,
    InvalidReply,
    PermanentServiceError,
    TransientServiceError,
)

SERVICE = "Anthropic"
GARBLED_REPLY_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class ToolReply:
    """What came back: the forced tool's input (None when Claude answered without the tool)."""

    tool_input: Any
    stop_reason: str | None
    input_tokens: int
    output_tokens: int


class ClaudeClient:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout: float,
        max_retries: int,
        max_output_tokens: int,
    ):
        self.model = model
        self.max_output_tokens = max_output_tokens
        self._max_retries = max_retries
        self._sdk = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)

    @classmethod
    def from_config(cls, config) -> "ClaudeClient":
        return cls(
            api_key=config.anthropic_api_key,
            base_url=config.anthropic_base_url,
            model=config.tagging_model,
            timeout=config.claude_timeout_seconds,
            max_retries=config.claude_max_retries,
            max_output_tokens=config.claude_max_output_tokens,
        )

    def close(self) -> None:
        self._sdk.close()

    def call_tool(self, *, system: str, user_text: str, tool: dict) -> ToolReply:
        for attempt in range(self._max_retries + 1):
            try:
                message = self._create(system=system, user_text=user_text, tool=tool)
                break
            except (anthropic.APIResponseValidationError, ValueError) as exc:
                # A garbled 200 the SDK does not retry: retry it within the same bound as its own retries.
                if attempt >= self._max_retries:
                    raise InvalidReply("Anthropic's reply could not be read as a Message.", service=SERVICE) from exc
                time.sleep(min(GARBLED_REPLY_BACKOFF_SECONDS * 2**attempt, 8.0))
        tool_input = next(
            (block.input for block in message.content if block.type == "tool_use" and block.name == tool["name"]),
            None,
        )
        usage = message.usage
        return ToolReply(
            tool_input=tool_input,
            stop_reason=message.stop_reason,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
        )

    def _create(self, *, system: str, user_text: str, tool: dict):
        try:
            return self._sdk.messages.create(
                model=self.model,
                max_tokens=self.max_output_tokens,
                system=system,
                messages=[{"role": "user", "content": user_text}],
                tools=[tool],
                tool_choice={"type": "tool", "name": tool["name"]},
            )
        except anthropic.AuthenticationError as exc:
            raise AuthenticationFailed(
                "Anthropic refused the API key (HTTP 401). Check ANTHROPIC_API_KEY.", service=SERVICE, status=401
            ) from exc
        except anthropic.PermissionDeniedError as exc:
            raise AuthenticationFailed(
                f"Anthropic denied this key access to model {self.model} (HTTP 403).", service=SERVICE, status=403
            ) from exc
        except anthropic.APITimeoutError as exc:
            raise TransientServiceError("Claude did not answer in time, even after retries.", service=SERVICE) from exc
        except anthropic.APIConnectionError as exc:
            raise TransientServiceError("Could not reach Anthropic, even after retries.", service=SERVICE) from exc
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            if status in (408, 409, 429) or status >= 500:
                raise TransientServiceError(
                    f"Anthropic kept answering HTTP {status} ({_error_type(exc)}) after retries.",
                    service=SERVICE,
                    status=status,
                ) from exc
            raise PermanentServiceError(
                f"Anthropic rejected the request with HTTP {status} ({_error_type(exc)}); "
                f"check BRAINTRUST_OPS_TAGGING_MODEL ({self.model}).",
                service=SERVICE,
                status=status,
            ) from exc


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(error.get("type") or type(exc).__name__)
