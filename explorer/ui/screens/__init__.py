"""Screens beyond the main one (help, and later trees, beams...)."""
