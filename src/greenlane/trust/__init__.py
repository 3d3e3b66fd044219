"""Participants, keys, signatures and the evidence log."""
