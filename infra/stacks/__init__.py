"""Stacks of the stratoflow CDK app."""
