"""AWS prices used by the cost figures of `make bench`: us-east-1, on-demand, in US dollars.

Each price names the AWS pricing page it comes from (read in 2025; check it before
quoting a figure: prices change). Free tiers are ignored, which overstates the cost of a
small installation. Data transfer out of AWS (on-prem workers reading results) is not
counted, nor is storage, which depends on retention rather than on the number of runs.
"""

from __future__ import annotations

MILLION = 1_000_000

# Amazon DynamoDB, on-demand capacity mode (table class Standard).
# https://aws.amazon.com/dynamodb/pricing/on-demand/ (prices lowered by 50% on 1 Nov 2024)
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / MILLION
"""One write request unit: a standard write of an item up to 1 KB (a 2.5 KB item: 3).
A write to an item a global secondary index projects is one more write on the index
(two when the write changes the index key: a delete and a put)."""
DYNAMODB_READ_REQUEST_UNIT = 0.125 / MILLION
"""One read request unit: a strongly consistent read of up to 4 KB (eventually
consistent: half a unit). A Query reads the sum of its items' sizes, rounded up to 4 KB."""
DYNAMODB_WRITE_UNIT_BYTES = 1024
DYNAMODB_READ_UNIT_BYTES = 4096
# Same page: "GetRecords API calls invoked by AWS Lambda as part of DynamoDB triggers are
# free" — the automations Lambda reads the table's stream at no request charge.
DYNAMODB_STREAM_READ_BY_LAMBDA = 0.0

# Amazon SQS, standard queues. https://aws.amazon.com/sqs/pricing/
SQS_REQUEST = 0.40 / MILLION
"""Every API action is a request (empty long polls too); each 64 KB chunk of a payload is
one request; a batch of up to 10 messages is one request."""

# Amazon S3 Standard. https://aws.amazon.com/s3/pricing/ ("Requests & data retrievals")
S3_PUT_REQUEST = 0.005 / 1000
"""PUT, COPY, POST and LIST requests: $0.005 per 1,000."""
S3_GET_REQUEST = 0.0004 / 1000
"""GET, SELECT and all other requests (HEAD included): $0.0004 per 1,000."""

# Amazon CloudWatch Logs, Standard log class. https://aws.amazon.com/cloudwatch/pricing/
# ("Logs" tab, "Collect (Data Ingestion)")
CLOUDWATCH_LOGS_INGESTION_PER_GB = 0.50
CLOUDWATCH_LOGS_EVENT_OVERHEAD_BYTES = 26
"""PutLogEvents counts each event as its UTF-8 message plus 26 bytes; billing is on the
ingested data, so this is counted as ingested too (the conservative reading)."""
GB = 1024**3

# AWS Lambda, x86 (the stack's functions are x86_64). https://aws.amazon.com/lambda/pricing/
LAMBDA_REQUEST = 0.20 / MILLION
LAMBDA_GB_SECOND = 0.0000166667
"""The first tier (up to 6 billion GB-seconds a month)."""
AUTOMATIONS_MEMORY_GB = 512 / 1024
"""infra/constructs/functions.py: the automations function has 512 MB."""
AUTOMATIONS_BATCH_SIZE = 100
"""infra/constructs/functions.py AUTOMATIONS_BATCH_SIZE: stream records per invocation
(when the stream has that many waiting; fewer at low traffic)."""
SCHEDULER_MEMORY_GB = 512 / 1024

# AWS Step Functions, Standard workflows: the reference point of the issue.
# https://aws.amazon.com/step-functions/pricing/ ($0.025 per 1,000 state transitions)
STEP_FUNCTIONS_STANDARD_TRANSITION = 25.0 / MILLION

TARGET_PER_MILLION_TASK_RUNS = 2.0
"""The issue's target: under $2 per million task runs."""
