"""Firms and the people who work for them: firms and staff, roles, Slack workspaces and
accounts, support staff, API tokens, firm settings."""
