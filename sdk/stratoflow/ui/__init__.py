"""The web UI (docs/ui.md): pages rendered by the API Lambda (`functions/api`) with
powertools' event handler and Jinja2, served by CloudFront in AWS and by `strato dev`
on 127.0.0.1. The pages call the same SDK functions as the CLI."""
