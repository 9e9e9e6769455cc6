"""Layer 5, the commands: ``bench run``, ``run --count``, ``diff``, ``check``, and the pytest plugin behind
``pytest --benchmark-only``. Each puts a campaign and a report together."""
