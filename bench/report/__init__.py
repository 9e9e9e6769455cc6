"""Layer 4, the report: the results folder (tables, JSON, CSV, plots) and the formatting of figures. Never imports
``bench.campaign``: it reads records."""
