"""The headless engine: model loading, incremental traces, the session. Never imports Textual or Rich."""
