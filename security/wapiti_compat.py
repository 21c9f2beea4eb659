"""Run Debian's wapiti 3.0.4 under Python 3.11, where its URL-exclusion patterns fail to compile.

wapiti builds every `-x` pattern as `<regex>\\Z(?ms)`; Python 3.11 refuses global flags that are not
at the start ("global flags not at the start of the expression"), so any exclusion crashes the crawl
before it starts. The same translation with the flags moved to the front is swapped in, then wapiti's
own entry point runs with the given arguments. Run it with Debian's python3, which has wapitiCore.
"""

import re
import sys

from wapitiCore.main.wapiti import wapiti_main
from wapitiCore.net import crawler


def wildcard_translate(pattern: str) -> re.Pattern[str]:
    """wapiti's wildcard pattern ("*" matches anything), flags first."""
    return re.compile("(?ms)" + ".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z")


crawler.wildcard_translate = wildcard_translate

if __name__ == "__main__":
    sys.argv[0] = "wapiti"
    sys.exit(wapiti_main())
