"""The sandbox's fixed identities: two projects and two fake keys (never real credentials)."""

PROJECT_ID = "5d1b6f0e-8f3a-4c47-9b7e-2a6c0e1f4b21"
OTHER_PROJECT_ID = "9a8e7c6d-1b2a-4f3e-8d7c-6b5a4f3e2d10"
KNOWN_PROJECTS = frozenset({PROJECT_ID, OTHER_PROJECT_ID})
PROJECT_NAMES = {PROJECT_ID: "Sefaria chatbot", OTHER_PROJECT_ID: "Another team's project"}
SANDBOX_ORG_ID = "3c1f5e2a-7b9d-4e6f-a8c0-1d2e3f4a5b6c"

BRAINTRUST_KEY = "bt-sandbox-key-for-tests-000000"
ANTHROPIC_KEY = "sk-sandbox-key-for-tests-000000"
# The user behind the sandbox's tags and datasets: the spec's ProjectTag.user_id is a UUID.
SANDBOX_USER_ID = "6f2a9c1e-4b7d-4e3a-9c5f-0a1b2c3d4e5f"

# How Braintrust writes times (``created``), and how the sandbox stores them: UTC, microseconds, ``Z``.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
