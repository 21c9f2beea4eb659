"""The app for a local security scan, with its instance folder somewhere other than the checkout.

Flask puts the instance folder next to the package (instance/ in the checkout); the scan must not
touch that one, so SCAN_INSTANCE_PATH names a temporary folder instead. Used as
`flask --app security/serve.py ...` and `gunicorn --pythonpath security serve:app`.
"""

import os

import flask

_instance = os.environ.get("SCAN_INSTANCE_PATH")
if not _instance:
    raise RuntimeError("SCAN_INSTANCE_PATH must name a temporary instance folder")
flask.Flask.auto_find_instance_path = lambda self: _instance  # type: ignore[method-assign]

from artifacts_app import create_app  # noqa: E402

app = create_app()
