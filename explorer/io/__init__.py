"""Files: prompt files, saved prompts, the autosaved session, exports. Never imports Textual or Rich."""
