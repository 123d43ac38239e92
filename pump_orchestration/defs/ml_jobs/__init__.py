"""The ``ml_jobs`` mirror: a sensor that keeps one row per ML run for SQL dashboards and n8n workflows."""
