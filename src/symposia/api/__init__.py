"""HTTP routers: thin, one file per surface."""
