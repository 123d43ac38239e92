"""Delivering predictions to receivers (the n8n webhook); no Dagster import."""
