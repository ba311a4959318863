pytest_plugins = ["shared.testing.pytest_plugin"]
