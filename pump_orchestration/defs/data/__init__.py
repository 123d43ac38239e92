"""Data loading: the tracker's ``coin_metrics`` source, its cached daily slices, and jobs that fill it."""
