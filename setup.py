"""Package discovery (the rest of the metadata is in pyproject.toml).

``tasks/`` and ``methods/`` sit at the top of the repository, so that a contributor sees at once
where a new task or method goes, and install as ``unlearnbench.tasks`` and ``unlearnbench.methods``.
Every package below them and below ``unlearnbench/`` is found, not listed, so a new subpackage
cannot silently drop out of the wheel (tests/test_wheel.py builds and installs one).
"""

from setuptools import find_namespace_packages, find_packages, setup

MAPPED = {"unlearnbench.tasks": "tasks", "unlearnbench.methods": "methods"}

# Namespace packages too: the data folders (report/templates, schema) are importable folders, and
# setuptools warns about every one that is not listed.
packages = find_namespace_packages(include=["unlearnbench", "unlearnbench.*"], exclude=["*.__pycache__"])
for name, folder in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=MAPPED,
    package_data={"unlearnbench.lm": ["*.txt"], "unlearnbench": ["schema/*.json"], "unlearnbench.report": ["templates/*"]},
)
