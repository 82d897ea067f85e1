"""Audit: the tamper-evident trail of every event, for SEGOB oversight."""
