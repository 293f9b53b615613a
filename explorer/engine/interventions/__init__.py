"""Interventions: steer, clamp, ablate and patch the model (SCIENCE.md 5.11). Never imports Textual or Rich.

spec      the data (one frozen dataclass per kind, JSON round trip)
hooks     InterventionHooks: apply a list of them to a live model
vectors   steering vectors from files, differences of means, SAE decoder directions
paired    baseline + intervened stepping as one batch of two, and the EffectView
patching  activation patching (exact, background-friendly) and attribution patching
"""
