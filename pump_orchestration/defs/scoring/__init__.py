"""Live scoring: model activation, the coin_metrics sensor, prediction runs, manual scoring, webhooks."""
