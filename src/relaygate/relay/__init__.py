"""Use cases: chat relay, upstream I/O, stream metering, settlement."""
