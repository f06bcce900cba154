"""The database: an async SQLAlchemy engine, Alembic migrations run at start, demo users."""
