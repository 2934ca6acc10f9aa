"""The read API: app with health and readiness, auth, shared parameters, and its routers."""
