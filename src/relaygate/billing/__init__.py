"""Money: prices, the offline tokenizer fallback, reservations and settlement."""
