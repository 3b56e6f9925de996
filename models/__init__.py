"""Ready models and their bundled data (the model zoo)."""
