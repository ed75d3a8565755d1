"""`prefect.client` under its Prefect path: `get_client()` and the client's schemas.

stratoflow has no REST API: the client is a façade over the SDK functions that read and
steer runs, deployments, variables, artifacts, concurrency limits and automations in the
current backend (`stratoflow.client.orchestration`; docs/sdk.md, "Client").
"""
