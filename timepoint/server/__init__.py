"""`timepoint serve`: the read-only web face of the run catalog (REST API, dashboard, characters as chat models)."""
