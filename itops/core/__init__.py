"""Shared machinery with no domain knowledge: auth, audit, jobs, errors, crypto, pagination."""
