"""Support shared by the tests and the benchmark, shipped in no wheel: a real HTTP server on
loopback that speaks the football-data.org API (`api_double`), and a throwaway embedded
PostgreSQL (`postgres`)."""
