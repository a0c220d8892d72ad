"""Administrators' pages: users and roles, the audit log, directory refresh."""
