"""Infrastructure the use cases stand on: the upstream HTTP client, the media fetcher and the address
rules, the in-memory snapshot, the access log, signed media links. Knows no use case."""
