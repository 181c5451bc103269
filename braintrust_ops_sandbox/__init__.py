"""A local stand-in for Braintrust and Anthropic, for tests and the demo. Production code never imports it."""

from braintrust_ops_sandbox.constants import ANTHROPIC_KEY, BRAINTRUST_KEY, OTHER_PROJECT_ID, PROJECT_ID
from braintrust_ops_sandbox.server import Sandbox

__all__ = ["ANTHROPIC_KEY", "BRAINTRUST_KEY", "OTHER_PROJECT_ID", "PROJECT_ID", "Sandbox"]
