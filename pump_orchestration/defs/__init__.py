"""The Dagster layer, one folder per capability; ``pump_orchestration.definitions`` merges them.

``shared`` holds what every capability uses (run tags, partitions, warehouse and model-store
resources, the parquet IO manager, metadata and progress helpers) and imports no capability.
The capabilities import ``shared`` and, where one builds on another, that one: ``training``
and ``evaluation`` build on ``data``'s ``coin_metrics_slice``; ``evaluation`` names
``training``'s ``fitted_model`` for lineage. Live scoring will be its own folder, ``scoring``.
"""
