"""What every capability of the Dagster layer uses; imports no capability folder."""
