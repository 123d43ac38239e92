"""Live scoring as plain functions (no Dagster): load active models, score a batch or one coin, write it."""
