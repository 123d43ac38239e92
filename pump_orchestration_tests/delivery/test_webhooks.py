"""WebhookSender against a real local HTTP server (pytest-httpserver): retries, timeouts, refusals, headers.

Small timeouts and back-off keep the file to a few seconds. The real-n8n contract is in
``test_n8n_contract.py``.
"""
from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
from werkzeug import Response

from pump_orchestration.delivery.webhooks import IDEMPOTENCY_HEADER, WebhookSender, build_payload, idempotency_key
from pump_orchestration.testing import free_port
from pump_orchestration.testing.payloads import example_prediction

COIN = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
TS = "2025-09-01T12:00:00Z"


@pytest.fixture
def payload() -> dict:
    return build_payload(COIN, TS, [example_prediction()])


def sender(url: str, **kwargs) -> WebhookSender:
    return WebhookSender(url, **{"timeout": 2.0, "max_attempts": 3, "backoff_seconds": 0.01,
                                 "max_backoff_seconds": 0.05, **kwargs})


def test_success_on_the_first_try(httpserver, payload):
    httpserver.expect_request("/hook", method="POST").respond_with_json({"message": "Workflow was started"})
    seen = []
    delivery = sender(httpserver.url_for("/hook"), on_attempt=seen.append).post(payload)
    assert delivery.delivered
    assert [(a.number, a.status) for a in delivery.attempts] == [(1, 200)]
    assert "Workflow was started" in delivery.attempts[0].body
    assert delivery.attempts[0].error is None and delivery.attempts[0].duration_ms >= 0
    assert delivery.last_error is None
    assert seen == delivery.attempts
    assert len(httpserver.log) == 1


def test_server_errors_are_retried_until_success(httpserver, payload):
    for status in (500, 503):
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("busy", status=status)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok", status=200)
    delivery = sender(httpserver.url_for("/hook")).post(payload)
    assert delivery.delivered
    assert [(a.number, a.status) for a in delivery.attempts] == [(1, 500), (2, 503), (3, 200)]
    assert [a.body for a in delivery.attempts] == ["busy", "busy", "ok"]
    assert len(httpserver.log) == 3
    httpserver.check_assertions()


def test_server_errors_until_out_of_attempts(httpserver, payload):
    httpserver.expect_request("/hook", method="POST").respond_with_data("down", status=502)
    delivery = sender(httpserver.url_for("/hook"), max_attempts=2).post(payload)
    assert not delivery.delivered
    assert [a.status for a in delivery.attempts] == [502, 502]
    assert delivery.last_error == "HTTP 502: down"


@pytest.mark.parametrize("status", [400, 422])
def test_a_client_error_is_not_retried(httpserver, payload, status):
    httpserver.expect_request("/hook", method="POST").respond_with_data("bad payload", status=status)
    delivery = sender(httpserver.url_for("/hook")).post(payload)
    assert not delivery.delivered
    assert [a.status for a in delivery.attempts] == [status]
    assert f"HTTP {status}" in delivery.last_error and "bad payload" in delivery.last_error
    assert len(httpserver.log) == 1


def test_a_slow_receiver_is_retried_and_reported_as_a_timeout(httpserver, payload):
    release = threading.Event()

    def slow(request):
        release.wait(2.0)  # far longer than the client's timeout; released when the test ends
        return Response("late", status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(slow)
    try:
        delivery = sender(httpserver.url_for("/hook"), timeout=0.2, max_attempts=2).post(payload)
    finally:
        release.set()
    assert not delivery.delivered
    assert [a.number for a in delivery.attempts] == [1, 2]
    assert all(a.status is None and "Timeout" in a.error for a in delivery.attempts), delivery.attempts
    assert "Timeout" in delivery.last_error
    assert all(a.duration_ms >= 150 for a in delivery.attempts)


def test_a_refused_connection_uses_every_attempt():
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    delivery = sender(url, max_attempts=4).post(build_payload(COIN, TS, [example_prediction()]))
    assert not delivery.delivered
    assert [a.number for a in delivery.attempts] == [1, 2, 3, 4]
    assert all(a.status is None for a in delivery.attempts)
    assert delivery.last_error.startswith("ConnectionError")


def test_the_idempotency_key_header_and_json_body_arrive_as_sent(httpserver, payload):
    httpserver.expect_request("/hook", method="POST", headers={IDEMPOTENCY_HEADER: payload["idempotency_key"]},
                              json=payload).respond_with_data("ok")
    assert sender(httpserver.url_for("/hook")).post(payload).delivered
    request, _ = httpserver.log[0]
    assert request.headers[IDEMPOTENCY_HEADER] == payload["idempotency_key"]
    assert request.mimetype == "application/json"
    assert request.get_json() == payload


def test_an_explicit_key_overrides_the_payloads(httpserver, payload):
    httpserver.expect_request("/hook", method="POST", headers={IDEMPOTENCY_HEADER: "other-key"}).respond_with_data("ok")
    assert sender(httpserver.url_for("/hook")).post(payload, key="other-key").delivered
    assert httpserver.log[0][0].get_json()["idempotency_key"] == payload["idempotency_key"]


def test_build_payload_structure_and_counts():
    predictions = [example_prediction(1), example_prediction(2, probability=0.2),
                   example_prediction(3, probability=0.91)]
    payload = build_payload(COIN, "2025-09-01T14:00:00+02:00", predictions)
    assert payload["coin_id"] == COIN
    assert payload["timestamp"] == "2025-09-01T12:00:00+00:00"
    assert payload["predictions"] == predictions
    assert payload["metadata"] == {"total_predictions": 3, "alerts_count": 2,
                                   "service": "ml-prediction-service", "version": "1.0.0"}
    assert payload["idempotency_key"] == idempotency_key(COIN, TS)
    empty = build_payload(COIN, TS, [])
    assert empty["metadata"]["total_predictions"] == 0 and empty["metadata"]["alerts_count"] == 0


def test_idempotency_key_is_stable_across_time_zones_and_types():
    same_instant = [
        "2025-09-01T12:00:00Z",
        "2025-09-01T12:00:00+00:00",
        "2025-09-01T14:00:00+02:00",
        "2025-09-01 12:00:00",                               # naive: taken as UTC
        pd.Timestamp("2025-09-01 12:00", tz="UTC"),
        pd.Timestamp("2025-09-01 08:00", tz="America/New_York"),  # EDT, UTC-4
        dt.datetime(2025, 9, 1, 12, tzinfo=dt.timezone.utc),
        dt.datetime(2025, 9, 1, 21, tzinfo=dt.timezone(dt.timedelta(hours=9))),
    ]
    keys = {idempotency_key(COIN, ts) for ts in same_instant}
    assert len(keys) == 1
    (key,) = keys
    assert len(key) == 64 and int(key, 16) >= 0
    assert idempotency_key("OtherCoin", TS) != key
    assert idempotency_key(COIN, "2025-09-01T12:00:01Z") != key


def test_invalid_url_is_rejected_naming_the_setting():
    for url in ("", "127.0.0.1:5678/webhook", "ftp://host/hook"):
        with pytest.raises(ValueError, match="N8N_WEBHOOK_URL"):
            WebhookSender(url)


@pytest.mark.parametrize("attempts", [0, -1])
def test_max_attempts_below_one_is_rejected_naming_the_setting(attempts):
    with pytest.raises(ValueError, match="WEBHOOK_MAX_ATTEMPTS"):
        WebhookSender("http://127.0.0.1:1/hook", max_attempts=attempts)
