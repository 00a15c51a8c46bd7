"""Turns a run directory plus verdicts into tables, plots and documents.

Reports display verdicts; they never decide correctness.
"""
