"""The Gemini generateContent dialect: pure converters to and from ``core``."""
