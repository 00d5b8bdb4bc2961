"""Work packages: the seeds' orchestra pattern on a git repository.

A work package (a Markdown file) is planned by a conductor model into subtasks (``plan``), each done
by a worker in its own git worktree and branch (``workers``: Podium's own search/replace editor or an
external coding agent pointed at Podium's gateway), held by a quality gate (the package's check command,
then a reviewer from another provider: ``gate``), and merged into an integration branch (``git``).
``runner`` schedules it all under one budget and one deadline; ``state`` lets a stopped run resume;
``report`` writes what happened and what it cost per role.
"""
