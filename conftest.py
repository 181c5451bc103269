pytest_plugins = ["braintrust_ops.sandbox.pytest_plugin"]
