"""`pip install .` gives a working app: the wheel holds every subpackage, the templates, the static
files and the migrations, and the installed app migrates and serves from any directory.

The wheel is built from a copy of the checkout in a temporary folder (setuptools writes build/ and
*.egg-info beside the sources it builds), so the checkout is left as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, stop, wait_until_healthy

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGE = "artifacts_app"
RESOURCE_FOLDERS = ("templates", "static", "migrations")
# Never copied into the build: environments, caches and earlier build output.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    "instance", ".pytest_cache", ".hypothesis", "test-results",
)
BUILD_TIMEOUT = 300
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0

pytestmark = pytest.mark.package


def lower_priority() -> None:
    """Building and installing is CPU-heavy: let the suite's timing-sensitive tests (the render budget)
    have the CPU first."""
    os.nice(19)


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command at low priority, failing the test with its output if it does not succeed."""
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
        preexec_fn=lower_priority, **kwargs,
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def shippable(folder: Path) -> list[Path]:
    """The files of a checkout folder a wheel should carry: no caches, no hidden files."""
    return sorted(
        path.relative_to(folder) for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built with `pip wheel --no-deps` from a copy of the checkout."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(CHECKOUT, source, ignore=NOT_SOURCES)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(base / "dist"), str(source)])
    wheels = list((base / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_every_subpackage_and_resource(wheel: Path) -> None:
    """Every module and subpackage, prices.toml, and all of templates/, static/ and migrations/."""
    names = set(zipfile.ZipFile(wheel).namelist())

    modules = [Path(PACKAGE) / path for path in shippable(CHECKOUT / PACKAGE) if path.suffix == ".py"]
    subpackages = [path.parent for path in modules if path.name == "__init__.py" and path.parent != Path(PACKAGE)]
    assert subpackages, "artifacts_app has subpackages (artifacts_app.artifacts at least)"
    missing = [str(path) for path in modules if path.as_posix() not in names]
    assert not missing, f"modules missing from the wheel: {missing}"
    assert f"{PACKAGE}/prices.toml" in names

    for folder in RESOURCE_FOLDERS:
        expected = [f"{PACKAGE}/{folder}/{path.as_posix()}" for path in shippable(CHECKOUT / folder)]
        assert expected, f"{folder}/ is empty in the checkout"
        missing = [name for name in expected if name not in names]
        assert not missing, f"files of {folder}/ missing from the wheel: {missing}"
    assert any(name.startswith(f"{PACKAGE}/static/vendor/htmx-") and name.endswith(".min.js") for name in names)
    revisions = [name for name in names if name.startswith(f"{PACKAGE}/migrations/versions/") and name.endswith(".py")]
    assert len(revisions) == len(list((CHECKOUT / "migrations" / "versions").glob("*.py"))) > 0
    for name in ("env.py", "alembic.ini", "script.py.mako"):
        assert f"{PACKAGE}/migrations/{name}" in names

    # Nothing but the package and its metadata: no top-level templates/ or tests/ in site-packages.
    assert {name.split("/", 1)[0] for name in names} == {PACKAGE, wheel.name.split("-py3")[0] + ".dist-info"}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]




def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.fixture
def installed(wheel: Path, tmp_path: Path) -> Path:
    """A fresh virtualenv in tmp_path with the wheel installed (dependencies pinned by constraints.txt)."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "-c", str(CHECKOUT / "constraints.txt"), str(wheel)])
    return venv




@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The installed app, migrated and served by gunicorn, run from a folder outside the checkout.

    No SECRET_KEY: the app makes one in its instance folder, which Flask puts inside the virtualenv.
    """
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in {"SECRET_KEY", "FLASK_APP", "PRICES_FILE", "PYTHONPATH", "RATELIMIT_STORAGE_URI",
                          "CACHE_REDIS_URL", "TRUSTED_HOSTS", "PUBLIC_BASE_URL", "TRUSTED_PROXIES", "INSTANCE_PATH"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'artifacts.db'}"
    env["PYTHONUNBUFFERED"] = "1"
    bin_dir = installed / "bin"

    where = run([str(bin_dir / "python"), "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"], cwd=workdir, env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed), f"imported from {where.stdout}, not the virtualenv"
    run([str(bin_dir / "flask"), "--app", PACKAGE, "db", "upgrade"], cwd=workdir, env=env)
    assert (tmp_path / "artifacts.db").stat().st_size > 0

    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--no-control-socket", f"{PACKAGE}:create_app()"],
            cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log, START_TIMEOUT)
        yield url, installed
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_the_installed_wheel_migrates_and_serves_pages_and_static_files(served: tuple[str, Path]) -> None:
    """`pip install` the wheel into a fresh virtualenv, `flask --app artifacts_app db upgrade`, then
    `gunicorn 'artifacts_app:create_app()'`: /login and /static/app.css are served. About 30-60 s
    (building the wheel, creating the virtualenv and installing the dependencies)."""
    url, venv = served

    status, content_type, body = fetch(f"{url}/login")
    assert status == 200
    assert content_type.startswith("text/html")
    assert b'name="csrf_token"' in body and b"</html>" in body

    status, content_type, body = fetch(f"{url}/static/app.css")
    assert status == 200
    assert content_type.startswith("text/css")
    assert body == (CHECKOUT / "static" / "app.css").read_bytes()

    htmx = next((CHECKOUT / "static" / "vendor").glob("htmx-*.min.js"))
    status, _, body = fetch(f"{url}/static/vendor/{htmx.name}")
    assert status == 200 and body == htmx.read_bytes()

    # The instance folder (secret key, render cache) lives inside the virtualenv, not in the checkout.
    instance = list(venv.glob(f"var/{PACKAGE}-instance/secret_key"))
    assert instance, sorted(str(path) for path in venv.glob("var/*"))
