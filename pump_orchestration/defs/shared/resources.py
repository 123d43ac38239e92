"""The warehouse and model-store resources, and the resource set of each deployment.

``PUMP_DEPLOYMENT`` chooses the set (see ``pump_orchestration.settings``):

* ``local``: the embedded SQLite warehouse and the model store under ``PUMP_DATA_DIR``;
* ``production``: the PostgreSQL at ``DB_DSN`` (required: the code location refuses to start
  without it) and the model store at ``MODEL_STORAGE_PATH`` (a volume every process shares).

Tests build their own set with ``SharedResources(...)``, pointing the webhook client at a real HTTP
server of their own on 127.0.0.1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import dagster as dg
from pydantic import Field

from pump_orchestration import settings


@lru_cache(maxsize=8)
def _engine_for(dsn: str):
    # One pooled engine per DSN and process; schema creation is idempotent and cheap after the first call.
    from pump_orchestration.warehouse.db import init_schema, make_engine

    engine = make_engine(dsn)
    init_schema(engine)
    return engine


class WarehouseResource(dg.ConfigurableResource):
    """The product's database: an explicit URL, else the deployment's (embedded SQLite or ``DB_DSN``)."""

    dsn: Optional[str] = Field(
        default=None, description="SQLAlchemy URL; empty = the deployment's warehouse (see PUMP_DEPLOYMENT).")

    def url(self) -> str:
        """The resolved database URL."""
        return settings.normalise_dsn(self.dsn) if self.dsn else settings.db_dsn()

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


class WebhookResource(dg.ConfigurableResource):
    """The n8n webhook predictions are POSTed to; no URL (and no ``N8N_WEBHOOK_URL``) = webhooks off."""

    url: Optional[str] = Field(default=None, description="Webhook URL; empty = N8N_WEBHOOK_URL, unset = off.")
    timeout_seconds: Optional[float] = Field(default=None, description="Per attempt; empty = WEBHOOK_TIMEOUT_SECONDS.")
    max_attempts: Optional[int] = Field(default=None, description="Per delivery round; empty = WEBHOOK_MAX_ATTEMPTS.")
    backoff_seconds: float = Field(default=0.5, description="First back-off between attempts (doubles each time).")

    def sender(self):
        """A ``WebhookSender``, or None when webhooks are off."""
        from pump_orchestration.delivery.webhooks import WebhookSender

        url = self.url or settings.webhook_url()
        if not url:
            return None
        return WebhookSender(url, timeout=self.timeout_seconds or settings.webhook_timeout_seconds(),
                             max_attempts=self.max_attempts or settings.webhook_max_attempts(),
                             backoff_seconds=self.backoff_seconds)


@dataclass(frozen=True)
class SharedResources:
    """The resources every capability is built with; each capability derives its own from these."""

    warehouse: WarehouseResource
    model_store: ModelStoreResource
    #: Where predictions are pushed (live scoring); the default reads N8N_WEBHOOK_URL at use.
    webhooks: WebhookResource = field(default_factory=WebhookResource)
    #: Parquet caches of slices and datasets; None = ``$PUMP_DATA_DIR/cache``.
    cache_dir: Optional[str] = None

    def as_dict(self) -> dict[str, dg.ConfigurableResource]:
        """The shared resources under the keys assets and sensors ask for."""
        return {"warehouse": self.warehouse, "model_store": self.model_store, "webhooks": self.webhooks}


def _local() -> SharedResources:
    # Paths resolve at use, so a process that sets PUMP_DATA_DIR later still sees its own.
    return SharedResources(warehouse=WarehouseResource(), model_store=ModelStoreResource(),
                           webhooks=WebhookResource())


def _production() -> SharedResources:
    return SharedResources(warehouse=WarehouseResource(dsn=dg.EnvVar("DB_DSN")), model_store=ModelStoreResource(),
                           webhooks=WebhookResource())


_DEPLOYMENTS = {"local": _local, "production": _production}


def deployment_resources() -> SharedResources:
    """The resource set of this deployment (``PUMP_DEPLOYMENT``); ``DeploymentError`` when it is unusable.

    The warehouse URL is checked here, when the code location starts, so a production deployment
    without ``DB_DSN`` (or a local one with a ``DB_DSN`` it would ignore) fails at once with a
    message naming the variable instead of at its first run.
    """
    settings.db_dsn()  # raises DeploymentError naming what to set
    return _DEPLOYMENTS[settings.deployment()]()
