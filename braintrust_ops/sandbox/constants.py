"""The sandbox's fixed identities: two projects and two fake keys (never real credentials)."""

PROJECT_ID = "5d1b6f0e-8f3a-4c47-9b7e-2a6c0e1f4b21"
OTHER_PROJECT_ID = "9a8e7c6d-1b2a-4f3e-8d7c-6b5a4f3e2d10"
KNOWN_PROJECTS = frozenset({PROJECT_ID, OTHER_PROJECT_ID})

BRAINTRUST_KEY = "bt-sandbox-key-for-tests-000000"
ANTHROPIC_KEY = "sk-sandbox-key-for-tests-000000"
