"""opcatflow."""
