"""The embedded local stack behind `strato dev` and `make demo`: the AWS emulator, and a
small runtime that does what AWS would (EventBridge ticks, stream and SQS event source
mappings) by invoking the same Lambda handler functions."""

DEV_HOME = ".stratoflow-dev"
"""`strato dev`'s default home (results, caches, bundles, the poller's log), in the
current directory; git-ignored by the `.gitignore` it is created with."""
