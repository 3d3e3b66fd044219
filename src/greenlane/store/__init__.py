"""Storage: SQLAlchemy models, sessions and Alembic migrations; SQLite or PostgreSQL."""
