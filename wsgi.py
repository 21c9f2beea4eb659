"""The WSGI entry point: `flask` finds it by name, gunicorn serves `wsgi:app`."""

from artifacts_app import create_app

app = create_app()
