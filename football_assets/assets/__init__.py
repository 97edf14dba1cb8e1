"""Assets by layer: ingestion (raw API answers) -> warehouse (tables) -> reporting (CSV)."""
