pytest_plugins = ["pytester", "braintrust_ops_sandbox.pytest_plugin", "tests.secret_guard"]
