"""Fault injection ("chaos") tests: killed pollers, duplicate and malformed messages,
concurrent schedulers, AWS throttling and 5xx, misbehaving flows, and property tests of
the transition table and of claims. `CHAOS_SCALE=full` (`make chaos`) runs them larger."""
