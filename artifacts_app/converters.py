"""URL converters: an id in a path is letters, digits and hyphens, or the route does not match."""

from werkzeug.routing import BaseConverter


class IdConverter(BaseConverter):
    """Run and token ids (UUIDs, or an imported run's own id); anything else is a plain 404.

    Matching here keeps NUL and other bytes the database refuses from ever reaching a query.
    """

    regex = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
