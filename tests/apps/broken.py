"""An app whose import fails, to check that the error reaches the user."""

raise RuntimeError("broken app: this import always fails")
