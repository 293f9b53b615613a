"""Training an SAE offline (``main.py sae train``): the training loop and where its text comes from.

``train`` runs the resumable phases and writes the SAE in SAELens format (through
``formats.saelens``); ``data`` yields deterministic training and held-out documents.
Never imports Textual or Rich.
"""
