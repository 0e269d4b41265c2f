"""Client keys: parsing from requests, hashing, and the checks a key must pass."""
