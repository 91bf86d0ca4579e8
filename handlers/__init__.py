"""Channel-neutral handlers (no SQL, no platform imports)."""
