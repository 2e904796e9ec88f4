"""Portal pages (thin: read through selectors, write through services)."""
