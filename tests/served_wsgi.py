"""wsgi.py as the servers that tests start load it (`gunicorn tests.served_wsgi:app`).

The same module and create_app() call, with the instance folder named by ARTIFACTS_TEST_INSTANCE_PATH
rather than the checkout's instance/ (see tests/instance_folder.py).
"""

import os
from pathlib import Path

from tests.instance_folder import instance_folder

with instance_folder(Path(os.environ["ARTIFACTS_TEST_INSTANCE_PATH"])):
    import wsgi

app = wsgi.app
assert app.instance_path == str(Path(os.environ["ARTIFACTS_TEST_INSTANCE_PATH"]).resolve()), app.instance_path
