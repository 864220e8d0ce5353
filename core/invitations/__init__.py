"""A firm's clients and their invitations: the client list, invites, links, reminders,
expiry (the sweep), bulk runs, the client's account (sessions, sign-in) and what a
client's text causes."""
