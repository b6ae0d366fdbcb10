"""Polls: the domain (rules, storage, rendering as text). Never imports discord."""
