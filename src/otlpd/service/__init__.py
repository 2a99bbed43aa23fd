"""Builds the component graph from a config and runs its lifecycle."""
