"""Deployments: definitions, code bundles, storage and runs."""
