"""Test support: real services (Redis, PostgreSQL) and the fake Twilio REST API."""
