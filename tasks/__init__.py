"""Dramatiq broker setup, actors and generators (generation arrives with issue 4)."""
