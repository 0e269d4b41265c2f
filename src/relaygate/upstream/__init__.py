"""One upstream attempt (transport, timeouts, error map, health), failover over candidates, and the one
stream driver every use case runs its streams through."""
