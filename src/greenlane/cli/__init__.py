"""The ``greenlane`` command."""
