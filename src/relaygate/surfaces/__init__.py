"""Client-facing APIs, one module each. The only code that speaks HTTP to clients."""
