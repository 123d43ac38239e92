"""One delivery round: lease pending webhooks, post each with retries, record every attempt; bounded in time.

Called by every prediction run right after its predictions are committed (for its own payloads) and by
the redelivery job (for everything still pending). The round stops taking new payloads when its time
budget is spent, so a slow or dead receiver delays only the webhooks, never the next batch's scoring.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Iterable

import sqlalchemy as sa

from pump_orchestration.delivery.webhooks import WebhookSender
from pump_orchestration.warehouse import predictions


def deliver_pending(engine: sa.Engine, sender: WebhookSender, *, keys: Iterable[str] | None = None,
                    limit: int = 500, budget_seconds: float = 30.0, give_up_after: dt.timedelta | None = None) -> dict:
    """Deliver pending webhooks (only ``keys`` when given); returns counts and the errors seen."""
    t0 = time.perf_counter()
    summary = {"delivered": 0, "failed": 0, "attempts": 0, "given_up": 0, "left_for_later": 0, "errors": []}
    if give_up_after is not None:
        with engine.begin() as conn:
            summary["given_up"] = predictions.give_up_stale(conn, give_up_after)
    # Lease long enough to cover every attempt of every row of this round.
    lease = budget_seconds + sender.max_attempts * (sender.timeout + sender.max_backoff_seconds)
    with engine.begin() as conn:
        rows = predictions.claim_webhooks(conn, limit=limit, lease_seconds=lease, keys=keys)
    for i, row in enumerate(rows):
        if time.perf_counter() - t0 > budget_seconds:
            summary["left_for_later"] = len(rows) - i
            with engine.begin() as conn:  # release the rest at once instead of waiting for the lease
                for rest in rows[i:]:
                    predictions.record_delivery(conn, rest, sender.url, [], False, rest["last_error"])
            break
        delivery = sender.post(row["payload"], row["idempotency_key"])
        with engine.begin() as conn:
            predictions.record_delivery(conn, row, sender.url, delivery.attempts, delivery.delivered,
                                        delivery.last_error)
        summary["attempts"] += len(delivery.attempts)
        if delivery.delivered:
            summary["delivered"] += 1
        else:
            summary["failed"] += 1
            if len(summary["errors"]) < 5:
                summary["errors"].append(f"{row['coin_id']} @ {row['data_timestamp']}: {delivery.last_error}")
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary
