"""``python -m greenlane`` is the ``greenlane`` command."""

from greenlane.cli.app import main

main()
