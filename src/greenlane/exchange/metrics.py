"""The node's Prometheus metrics: deliveries, retries, failures, queue depth, latency.

One registry per node context, not the process-wide default, so two nodes in
one process (the tests, the benchmark) keep their counts apart.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "greenlane_deliveries_total",
            "Envelopes the partner acknowledged with a verified receipt, by tracking state",
            ["state"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "greenlane_delivery_attempts_total",
            "Sending attempts (push) and fetches (pull), successful or not",
            ["mode"],
            registry=self.registry,
        )
        self.retries = Counter(
            "greenlane_delivery_retries_total",
            "Attempts that failed and were scheduled again",
            registry=self.registry,
        )
        self.failures = Counter(
            "greenlane_delivery_failures_total",
            "Envelopes given up on (FailedDelivery) after the last attempt or the maximum age",
            registry=self.registry,
        )
        self.received = Counter(
            "greenlane_envelopes_received_total",
            "Envelopes received and receipted, by tracking state (duplicates not counted)",
            ["state"],
            registry=self.registry,
        )
        self.refused = Counter(
            "greenlane_envelopes_refused_total",
            "Envelopes refused before storage, by error code",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "greenlane_delivery_latency_seconds",
            "From submission to a verified receipt",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "greenlane_outbox_pending",
            "Envelopes waiting for delivery (PendingDelivery)",
            registry=self.registry,
        )

    def watch_queue(self, depth: Callable[[], float]) -> None:
        """Read the queue depth from the database when scraped, not on every change."""
        self.queue_depth.set_function(depth)
