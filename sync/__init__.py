"""The project model and sync engine: project files, Git repositories, the SQLite index.

Nothing here imports Litestar or Dramatiq; `app/` and `tasks/` build on it.
"""
