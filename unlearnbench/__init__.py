"""unlearnbench: a machine-unlearning benchmark and evaluation harness.

``unlearnbench.load_runs(path_or_glob)`` turns run records into a pandas DataFrame; it is
imported on first use so that ``import unlearnbench`` (and the CLI's ``--help``) stays light.
"""

__all__ = ["load_runs"]


def __getattr__(name: str):
    if name == "load_runs":
        from unlearnbench.results import load_runs

        return load_runs
    raise AttributeError(f"module 'unlearnbench' has no attribute {name!r}")
