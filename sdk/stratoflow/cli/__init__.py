"""The `strato` command line."""

from stratoflow.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
