"""Dagster resources: the warehouse, the model store and the training request given at launch."""

from functools import lru_cache
from typing import Any, Optional

import dagster as dg
from pydantic import Field

from pump_orchestration import settings
from pump_orchestration.ml.request import FIELD_DOCS, RequestValidationError, TrainingRequest, validate_request


@lru_cache(maxsize=8)
def _engine_for(dsn: str):
    # One pooled engine per DSN and process; schema creation is idempotent and cheap after the first call.
    from pump_orchestration.warehouse.db import init_schema, make_engine

    engine = make_engine(dsn)
    init_schema(engine)
    return engine


class WarehouseResource(dg.ConfigurableResource):
    """The product's database: PostgreSQL at ``DB_DSN``, else the embedded SQLite file under ``PUMP_DATA_DIR``."""

    dsn: Optional[str] = Field(
        default=None, description="SQLAlchemy URL; empty = DB_DSN from the environment, else the embedded SQLite file."
    )

    def url(self) -> str:
        """The resolved database URL."""
        if not self.dsn:
            return settings.db_dsn()
        return self.dsn.replace("postgresql://", "postgresql+psycopg2://", 1)

    def engine(self):
        """A pooled SQLAlchemy engine with the product schema in place."""
        return _engine_for(self.url())


class ModelStoreResource(dg.ConfigurableResource):
    """Where model artifacts live (``MODEL_STORAGE_PATH``)."""

    root: Optional[str] = Field(default=None, description="Directory for artifacts; empty = MODEL_STORAGE_PATH.")

    def store(self):
        """The core model store rooted at the configured directory."""
        from pump_orchestration.ml.model_store import ModelStore

        return ModelStore(self.root or settings.model_storage_path())


def _doc(name: str) -> str:
    return FIELD_DOCS[name]


class TrainingRequestResource(dg.ConfigurableResource):
    """A model-training request (SPEC §3), filled in on the launchpad or in GraphQL ``runConfigData``.

    It is validated against the warehouse when the run starts, before any step runs,
    so a bad field fails the run at once with a message naming it.
    """

    warehouse: dg.ResourceDependency[WarehouseResource]
    name: str = Field(description=_doc("name"))
    model_type: str = Field(default="xgboost", description=_doc("model_type"))
    target_var: str = Field(default="price_close", description=_doc("target_var"))
    features: list[str] = Field(
        default=["price_close", "volume_sol", "buy_volume_sol", "sell_volume_sol", "num_buys", "num_sells",
                 "market_cap_close", "bonding_curve_pct"],
        description=_doc("features"),
    )
    phases: list[int] = Field(default=[], description=_doc("phases"))
    use_time_based_prediction: bool = Field(default=True, description=_doc("use_time_based_prediction"))
    target_operator: Optional[str] = Field(default=None, description=_doc("target_operator"))
    target_value: Optional[float] = Field(default=None, description=_doc("target_value"))
    future_minutes: int = Field(default=10, description=_doc("future_minutes"))
    min_percent_change: float = Field(default=30.0, description=_doc("min_percent_change"))
    direction: str = Field(default="up", description=_doc("direction"))
    label_mode: str = Field(default="end", description=_doc("label_mode"))
    params: dict[str, Any] = Field(default={}, description=_doc("params"))
    use_engineered_features: bool = Field(default=True, description=_doc("use_engineered_features"))
    feature_engineering_windows: list[int] = Field(default=[5, 10, 15], description=_doc("feature_engineering_windows"))
    use_smote: bool = Field(default=True, description=_doc("use_smote"))
    use_timeseries_split: bool = Field(default=True, description=_doc("use_timeseries_split"))
    cv_splits: int = Field(default=5, description=_doc("cv_splits"))
    train_start: Optional[str] = Field(default=None, description=_doc("train_start"))
    train_end: Optional[str] = Field(default=None, description=_doc("train_end"))
    random_state: int = Field(default=42, description=_doc("random_state"))
    fee_pct: float = Field(default=2.0, description=_doc("fee_pct"))
    description: Optional[str] = Field(default=None, description=_doc("description"))

    def to_request(self) -> TrainingRequest:
        """The core request object."""
        return TrainingRequest(
            name=self.name,
            model_type=self.model_type,
            target_var=self.target_var,
            features=tuple(self.features),
            phases=tuple(self.phases),
            use_time_based_prediction=self.use_time_based_prediction,
            target_operator=self.target_operator,
            target_value=self.target_value,
            future_minutes=self.future_minutes,
            min_percent_change=self.min_percent_change,
            direction=self.direction,
            label_mode=self.label_mode,
            params=dict(self.params),
            use_engineered_features=self.use_engineered_features,
            feature_engineering_windows=tuple(self.feature_engineering_windows),
            use_smote=self.use_smote,
            use_timeseries_split=self.use_timeseries_split,
            cv_splits=self.cv_splits,
            train_start=self.train_start,
            train_end=self.train_end,
            random_state=self.random_state,
            fee_pct=self.fee_pct,
            description=self.description,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Validate every field against the warehouse before any step of the run executes."""
        from sqlalchemy import select

        from pump_orchestration.warehouse import repository
        from pump_orchestration.warehouse.coin_metrics import available_columns
        from pump_orchestration.warehouse.schema import ref_coin_phases

        request = self.to_request()
        engine = self.warehouse.engine()
        with engine.connect() as conn:
            phase_ids = [row[0] for row in conn.execute(select(ref_coin_phases.c.phase_id))]
            name_taken = repository.model_name_exists(conn, request.name)
        try:
            validate_request(
                request,
                available_columns=available_columns(engine),
                phase_ids=phase_ids,
                max_window_minutes=settings.feature_lookback_minutes(),
            )
        except RequestValidationError as exc:
            problems = list(exc.problems)
        else:
            problems = []
        if name_taken:
            problems.append(f"name: a model named {request.name!r} already exists; choose another name")
        if problems:
            raise RequestValidationError(problems)
