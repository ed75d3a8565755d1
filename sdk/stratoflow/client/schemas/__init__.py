"""`prefect.client.schemas` under its Prefect path: the filters, sorts, actions and
responses the client's methods take and return. The objects themselves are stratoflow's
own (`stratoflow.client.schemas.objects`)."""
