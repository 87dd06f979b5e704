"""Loopback fakes of the services edgechat talks to, for tests, benchmarks and subprocess tests."""
