"""Background tasks (Prefect 3's `my_task.delay(...)`): a task run created here, run by
a task worker (`stratoflow.task_worker.serve`, `strato task-worker start`, the Lambda
task worker) and read back through the backend. See docs/background-tasks.md."""
