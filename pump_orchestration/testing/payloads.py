"""A webhook payload entry as a prediction run builds it, for tests of the sender and of receivers."""


def example_prediction(model_id: int = 1, probability: float = 0.83, threshold: float = 0.7) -> dict:
    """One entry of a payload's ``predictions`` (alert when the probability is above the threshold)."""
    is_alert = probability > threshold
    return {
        "prediction": int(is_alert), "probability": probability, "is_alert": is_alert, "alert_threshold": threshold,
        "model": {"id": model_id, "active_model_id": model_id, "name": "m", "custom_name": None,
                  "model_type": "xgboost", "target_variable": "price_close", "target_operator": None,
                  "target_value": None, "future_minutes": 10, "price_change_percent": 30.0, "target_direction": "up",
                  "features": ["volume_sol"], "phases": None, "total_predictions": 0, "last_prediction_at": None},
    }
