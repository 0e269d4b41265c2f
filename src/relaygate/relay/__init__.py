"""Use cases: chat relay, upstream I/O, stream metering (the money is the meter's: relaygate.meter)."""
