"""Operating the service: what an operator sees of it — Prometheus metrics, error
reports (Sentry), structured logs with a request id carried into the jobs a request
enqueues. Drivers and jobs record here; core knows nothing of it.
"""
