"""Apps built by tests keep their instance folder (SQLite default, secret key, render cache) out of the checkout.

create_app() takes no instance path, and Flask, left to itself, picks the checkout's instance/ folder;
create_app then creates it and binds the render cache to instance/render-cache. So the test harness
builds create_app's Flask with an instance_path of its choosing, from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import artifacts_app


@contextmanager
def instance_folder(path: Path) -> Iterator[None]:
    """Every create_app() inside this block builds its Flask with `path` as the instance folder."""
    build = artifacts_app.Flask

    def flask_in_folder(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("instance_path", str(Path(path).resolve()))
        return build(*args, **kwargs)

    # patch.object fails if create_app's module no longer builds its app from `artifacts_app.Flask`.
    with mock.patch.object(artifacts_app, "Flask", flask_in_folder):
        yield
