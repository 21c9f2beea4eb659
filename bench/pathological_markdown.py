"""Time every input of the pathological family: unbounded in-process render (before the time
budget) against the budgeted render the app uses now. Prints a table; the before column is
capped per input. Run: .venv/bin/python bench/pathological_markdown.py [CAP_SECONDS]"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from artifacts_app import rendering
from tests.pathological_markdown import family


def unbounded(text: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    started = time.perf_counter()
    rendering.render_in_process(text)
    out.put(time.perf_counter() - started)


def before(text: str, cap: float) -> float | None:
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=unbounded, args=(text, out))
    process.start()
    process.join(cap)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return out.get()


def main() -> None:
    cap = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    rendering.render_markdown("warm up")
    rows = []
    for name, text in family().items():
        old = before(text, cap)
        started = time.perf_counter()
        html = rendering.render_markdown(text)
        new = time.perf_counter() - started
        rows.append((name, old, new, "plain text" if "render-fallback" in html else "formatted"))
        print(f"{name[:40]:42} {'>' + str(cap) if old is None else f'{old:8.2f}'} s  {new:6.2f} s  {rows[-1][3]}",
              flush=True)
    slowest = max(rows, key=lambda row: cap if row[1] is None else row[1])
    print(f"\n{len(rows)} inputs; slowest before: {slowest[0]} "
          f"({'over ' + str(cap) if slowest[1] is None else f'{slowest[1]:.2f}'} s); "
          f"slowest now: {max(row[2] for row in rows):.2f} s")


if __name__ == "__main__":
    main()
