"""The ``unlearnbench`` command line (see :mod:`unlearnbench.cli.app.app`)."""
