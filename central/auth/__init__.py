"""Users, roles, tokens, login throttling."""
