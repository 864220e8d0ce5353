"""What staff and support ask: a client's status and timeline, the firm's overview, the
firm's health checklist, its invite funnel (and the SQL of each client's journey), and
its digest."""
