"""Cluster-wide state and the periodic maintenance (cleanup, key rotation)."""
