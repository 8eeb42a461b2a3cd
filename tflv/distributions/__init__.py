"""Structured distributions, TFP-compatible (batch shapes, log_prob, sample, entropy)."""
