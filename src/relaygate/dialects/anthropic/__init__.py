"""The Anthropic Messages dialect: pure converters to and from ``core``."""
