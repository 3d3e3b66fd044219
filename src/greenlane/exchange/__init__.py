"""Envelopes, outbox and inbox, delivery, receipts and tracking between nodes."""
