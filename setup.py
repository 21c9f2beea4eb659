"""Which packages the wheel holds; everything else about packaging is in pyproject.toml.

Every subpackage of artifacts_app is found by itself, and the top-level templates/, static/ and
migrations/ ship as artifacts_app.templates, .static and .migrations (pyproject.toml's package-dir
maps them, its package-data names their files). pyproject.toml alone cannot say this: its `find`
sees only folders that are already inside artifacts_app/.
"""

from setuptools import find_packages, setup

RESOURCE_FOLDERS = ("templates", "static", "migrations")

setup(
    packages=[
        *find_packages(include=["artifacts_app", "artifacts_app.*"]),
        *(f"artifacts_app.{folder}" for folder in RESOURCE_FOLDERS),
    ],
)
