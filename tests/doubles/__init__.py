"""Test doubles of cloud services, at the HTTP boundary (never of their SDKs)."""
