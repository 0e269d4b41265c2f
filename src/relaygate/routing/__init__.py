"""Channel selection: model patterns and mapping, priority tiers, weights, health, failover order."""
