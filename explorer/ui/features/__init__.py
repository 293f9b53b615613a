"""Features of the main screen, one module each (ExplorerApp mixins that add actions and state).

A feature never overrides another's methods: it registers what it adds to the shared screen
(table columns, append guards, step/job listeners, key conditions) in ``app.extensions``
(explorer/ui/extensions.py) from an ``install_*`` method, mounts its panel into
``#extra-panels``, and runs background work through ``app.jobs`` (explorer/ui/jobs.py).
See ARCHITECTURE.md, "UI: how to add a feature / columns / a panel / a mode".
"""
