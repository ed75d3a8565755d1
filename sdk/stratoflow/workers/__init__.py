"""Workers: the on-prem poller, the Lambda worker and the ECS dispatcher, and what they
share (messages, work queues, claiming and executing a flow run)."""
