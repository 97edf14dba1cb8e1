"""One resource per external system: the football-data.org API, the PostgreSQL warehouse, and
where the report goes. Each has a live and an offline implementation behind one interface."""
