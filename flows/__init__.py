"""Prefect flows: thin wrappers that run liftshift's stages and show their reports."""
