"""Contract with a real n8n: what WebhookSender posts is what n8n's Webhook node accepts and stores.

n8n comes from ``scripts/install_n8n.sh`` (run by ``.ci/run``), cached in ``$N8N_DIR``. The test
skips only when the installer recorded that the npm registry was unreachable (its marker file);
n8n simply not being installed is a failure, so a missing install step cannot pass silently.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from pump_orchestration.delivery.webhooks import IDEMPOTENCY_HEADER, WebhookSender, build_payload
from pump_orchestration.testing.n8n import INSTALL_HINT, N8nUnavailable, n8n_binary, n8n_dir, run_n8n
from pump_orchestration.testing.payloads import example_prediction

COINS = ["7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "9vMJfxuKxXBoEa7rM12mYLMwTacLMLDJqHozw96WQL8i"]
TIMESTAMPS = ["2025-09-01T12:00:00Z", "2025-09-01T12:05:00+00:00"]


def require_n8n() -> None:
    """Skip when the installer could not reach the npm registry; fail when n8n was never installed."""
    binary, unavailable = n8n_binary()
    if binary is not None:
        return
    if unavailable:
        pytest.skip(unavailable)
    pytest.fail(f"n8n is not installed in {n8n_dir()} and no UNAVAILABLE marker explains why: {INSTALL_HINT}",
                pytrace=False)


@pytest.fixture(scope="module")
def n8n(tmp_path_factory):
    """A running n8n for this module; request it after ``require_n8n()`` (which decides skip vs. fail)."""
    require_n8n()
    try:
        with run_n8n(tmp_path_factory.mktemp("n8n")) as server:
            yield server
    except N8nUnavailable as exc:
        pytest.fail(f"n8n did not start: {exc}", pytrace=False)


@pytest.mark.integration
def test_n8n_stores_each_payload_once_as_sent(request, record_property):
    require_n8n()  # here, not only in the fixture: a missing install is a FAILED test, not a setup error
    n8n = request.getfixturevalue("n8n")
    print(f"n8n {n8n.version}: import + activate {n8n.setup_seconds:.1f} s, `n8n start` until the webhook "
          f"answered {n8n.startup_seconds:.1f} s")
    record_property("n8n_startup_seconds", round(n8n.startup_seconds, 2))
    sender = WebhookSender(n8n.webhook_url, timeout=10, max_attempts=3, backoff_seconds=0.2)
    sent = {}
    for i, coin in enumerate(COINS):
        for j, ts in enumerate(TIMESTAMPS):
            payload = build_payload(coin, ts, [example_prediction(1, 0.83),
                                               example_prediction(2 + i, 0.35 + 0.1 * j)])
            delivery = sender.post(payload)
            assert delivery.delivered, delivery.last_error
            assert [a.number for a in delivery.attempts] == [1], delivery.attempts
            assert delivery.attempts[0].status == 200
            sent[(payload["coin_id"], payload["timestamp"])] = payload
    assert len(sent) == len(COINS) * len(TIMESTAMPS)
    assert len({p["idempotency_key"] for p in sent.values()}) == len(sent)

    executions = n8n.executions(expected=len(sent))
    assert len(executions) == len(sent), [e.body for e in executions]
    assert n8n.execution_count() == len(sent)
    assert all(e.status == "success" and e.mode == "webhook" for e in executions), executions
    stored = Counter((e.body["coin_id"], e.body["timestamp"]) for e in executions)
    assert stored == Counter(sent.keys())  # exactly one execution per coin and timestamp
    for execution in executions:
        payload = sent[(execution.body["coin_id"], execution.body["timestamp"])]
        assert execution.body == json.loads(json.dumps(payload))
        headers = {name.lower(): value for name, value in execution.headers.items()}
        assert headers[IDEMPOTENCY_HEADER.lower()] == payload["idempotency_key"]
        assert headers["content-type"].split(";")[0].strip() == "application/json"
        assert execution.webhook_url == n8n.webhook_url


def test_registry_unreachable_marker_skips_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("N8N_DIR", str(tmp_path))
    (tmp_path / "UNAVAILABLE").write_text("npm registry https://registry.example unreachable (test)\n")
    with pytest.raises(pytest.skip.Exception, match="registry.example unreachable"):
        require_n8n()


def test_missing_install_without_marker_fails_pointing_at_the_installer(tmp_path, monkeypatch):
    monkeypatch.setenv("N8N_DIR", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="scripts/install_n8n.sh"):
        require_n8n()
