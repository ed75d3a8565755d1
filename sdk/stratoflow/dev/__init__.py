"""The embedded local stack behind `strato dev` and `make demo`: the AWS emulator, and a
small runtime that does what AWS would (EventBridge ticks, stream and SQS event source
mappings) by invoking the same Lambda handler functions."""
