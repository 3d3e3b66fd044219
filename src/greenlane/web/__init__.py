"""Officer console and public verification."""
