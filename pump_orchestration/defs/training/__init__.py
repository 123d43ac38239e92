"""Training: labelled datasets, engineered features and fitted models on daily windows."""
