"""The n8n webhook: payload structure, idempotency key, and POSTing with retries and back-off.

The payload keeps the original service's structure (``coin_id``, ``timestamp``, ``predictions``
with ``prediction``, ``probability``, ``is_alert``, ``alert_threshold`` and a ``model`` block,
``metadata`` with ``total_predictions``, ``alerts_count``, ``service``, ``version``) and adds an
``idempotency_key`` field, also sent as the ``Idempotency-Key`` header, so a receiver can drop
repeats: delivery is at least once (a reply lost after the receiver stored the payload makes us
send it again).

Retries within one delivery round use tenacity (exponential back-off) on timeouts, refused
connections and 408/425/429/5xx answers; other 4xx answers end the round at once. Whatever is
still undelivered is tried again by later rounds (see ``warehouse.predictions``).
"""
from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import requests
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from pump_orchestration.vocabulary import WEBHOOK_SERVICE, WEBHOOK_VERSION, to_utc

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Answers worth trying again soon: the receiver is overloaded or restarting.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Longest response body kept in the attempt log.
MAX_BODY_CHARS = 2000


def idempotency_key(coin_id: str, data_timestamp: Any) -> str:
    """The key of the one webhook for ``coin_id`` at ``data_timestamp`` (hex SHA-256, 64 characters)."""
    text = f"{coin_id}|{to_utc(data_timestamp, 'data_timestamp').isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()


def build_payload(coin_id: str, data_timestamp: Any, predictions: Sequence[dict]) -> dict:
    """The webhook body for one coin and data timestamp; ``predictions`` are already in payload form."""
    predictions = list(predictions)
    return {
        "coin_id": coin_id,
        "timestamp": to_utc(data_timestamp, "data_timestamp").isoformat(),
        "predictions": predictions,
        "metadata": {
            "total_predictions": len(predictions),
            "alerts_count": sum(1 for p in predictions if p["is_alert"]),
            "service": WEBHOOK_SERVICE,
            "version": WEBHOOK_VERSION,
        },
        "idempotency_key": idempotency_key(coin_id, data_timestamp),
    }


@dataclass
class Attempt:
    """One POST: the HTTP status (None when no answer came), body or error, and how long it took."""

    number: int
    status: int | None
    body: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUS


@dataclass
class Delivery:
    """The outcome of one delivery round of one payload."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def last_error(self) -> str | None:
        if not self.attempts or self.delivered:
            return None
        last = self.attempts[-1]
        return last.error or f"HTTP {last.status}: {(last.body or '').strip()[:200]}"


class WebhookSender:
    """POSTs payloads to ``url`` with ``max_attempts`` tries per round, ``timeout`` seconds each."""

    def __init__(self, url: str, *, timeout: float = 5.0, max_attempts: int = 3, backoff_seconds: float = 0.5,
                 max_backoff_seconds: float = 4.0, session: requests.Session | None = None,
                 on_attempt: Callable[[Attempt], None] | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"N8N_WEBHOOK_URL: {url!r} is not an http(s) URL")
        if max_attempts < 1:
            raise ValueError(f"WEBHOOK_MAX_ATTEMPTS: must be >= 1, got {max_attempts}")
        self.url = url
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.session = session or requests.Session()
        self.on_attempt = on_attempt

    def _attempt(self, payload: dict, key: str, number: int) -> Attempt:
        t0 = time.perf_counter()
        try:
            response = self.session.post(self.url, json=payload, timeout=self.timeout,
                                         headers={IDEMPOTENCY_HEADER: key})
            attempt = Attempt(number, response.status_code, response.text[:MAX_BODY_CHARS], None,
                              int((time.perf_counter() - t0) * 1000))
        except requests.RequestException as exc:
            attempt = Attempt(number, None, None, f"{type(exc).__name__}: {exc}"[:MAX_BODY_CHARS],
                              int((time.perf_counter() - t0) * 1000))
        if self.on_attempt is not None:
            self.on_attempt(attempt)
        return attempt

    def post(self, payload: dict, key: str | None = None) -> Delivery:
        """Deliver ``payload`` (its own ``idempotency_key`` unless ``key`` is given); never raises for HTTP trouble."""
        key = key or payload["idempotency_key"]
        delivery = Delivery()
        numbers = itertools.count(1)

        def once() -> Attempt:
            attempt = self._attempt(payload, key, next(numbers))
            delivery.attempts.append(attempt)
            return attempt

        Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.max_backoff_seconds),
            retry=retry_if_result(lambda attempt: not attempt.ok and attempt.retryable),
            retry_error_callback=lambda state: state.outcome.result(),  # out of attempts: keep the last one
        )(once)
        return delivery
