"""The reports an NPM publishes, read from the report projection (never instance JSON)."""
