"""Storage: SQLAlchemy 2 models, engine setup and numbered Alembic migrations."""
