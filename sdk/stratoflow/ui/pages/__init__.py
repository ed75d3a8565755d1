"""One module per page group, each exposing `router` (included by stratoflow.ui.app)."""
