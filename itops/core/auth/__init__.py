"""Sign-in, users, roles and personal API tokens."""
