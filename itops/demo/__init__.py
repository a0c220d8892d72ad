"""Demo helpers: private peer services for `make run` and the tests."""
