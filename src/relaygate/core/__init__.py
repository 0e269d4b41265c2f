"""Provider-neutral types shared by every dialect and provider."""
