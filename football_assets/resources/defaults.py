"""The resources' defaults: the API's address and pace, where the data goes. Imports nothing, so
settings.py checks variables against them without loading Dagster."""

DEFAULT_API_URL = "https://api.football-data.org/v4"
DEFAULT_REQUESTS_PER_MINUTE = 10  # the free tier
DEFAULT_CONNECT_TIMEOUT = 5.0  # seconds to establish a connection to the API
DEFAULT_READ_TIMEOUT = 30.0  # seconds to wait for (each part of) an answer
DEFAULT_MAX_RETRY_SECONDS = 300.0  # how long one request may keep failing before giving up
DEFAULT_SCHEMA = "football"
DEFAULT_EMBEDDED_PGDATA = ".football/pgdata"
# The request budget's tables, where the deployment keeps it in PostgreSQL: one schema for every
# warehouse schema in the database, since the server counts per key, not per schema.
BUDGET_SCHEMA = "football_budget"
