"""The Textual user interface: the only package that imports Textual or Rich.

Module-level imports here stay light (no torch): the first screen must appear before
the model has loaded. Engine and analyses modules are imported inside functions.
"""
