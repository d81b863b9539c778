"""Reviewers' verdicts: the append-only store, how they become data, their checks, their effect."""
