"""publisher: a newsletter from plain Markdown to a web archive, feeds and email."""

__version__ = "0.3.0"

from .errors import Problem, PublisherError  # noqa: E402

__all__ = ["Problem", "PublisherError", "__version__"]
