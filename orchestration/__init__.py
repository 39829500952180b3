"""Scale-out of tap-segments: partitioned ``meltano run``s side by side, under Dagster.

- ``plan``: partition plans (which vendors and ids each partition reads) and their checks.
- ``meltano_project``: one Meltano system directory per partition, plugins installed once.
- ``definitions``: the Dagster jobs (``dagster dev -m orchestration.definitions``).
- ``python -m orchestration``: check a plan, or run it through Dagster from a shell.

Installed apart from the tap: ``pip install -r orchestration/requirements.txt``.
"""
