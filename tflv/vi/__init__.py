"""Objectives and gradient estimators, independent of any model."""
