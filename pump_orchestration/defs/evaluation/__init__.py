"""Evaluation: test reports, A/B comparisons and walk-forward evaluation of stored models."""
