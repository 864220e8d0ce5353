"""Bank connections: the provider port and the sandbox, connections and their health,
syncing, the provider's webhooks, accounts and transactions, restoring (reconnect
invites), hosted link sessions."""
