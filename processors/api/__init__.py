"""The read API: app with liveness and readiness, auth, shared parameters, and its routers."""
