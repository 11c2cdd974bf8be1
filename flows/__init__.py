"""Prefect flows over the augment library (thin: tasks pass paths and small values)."""
