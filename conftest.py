pytest_plugins = ["pytester", "braintrust_ops.sandbox.pytest_plugin", "tests.secret_guard"]
