"""The stratoflow CDK app (see infra/README.md)."""
