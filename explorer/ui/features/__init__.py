"""Features of the main screen beyond the core explorer, one module each, as App mixins.

A feature is a class with ``action_*`` methods (keys come from ``explorer/ui/keymap.py``)
and, where it needs to, overrides of the hooks of ``ExplorerCore`` (calling ``super()``):

* ``_render_table(keep_row)``: fill the next-token table (the decoding lab adds columns);
* ``on_step_ready()``: after each new StepView is shown (re-score, update a panel);
* mount its own widgets into ``#extra-panels`` (below the mode panel) or push a Screen.

Model work goes in ``@work(thread=True, group=...)`` workers and comes back by message;
engine errors are ExplorerError and reach the user through the app's one error handler.
``ExplorerApp`` (at the end of app.py) lists the mixins in its bases before ``ExplorerCore``, so a
mixin's override runs first and reaches the core through ``super()``.
"""
