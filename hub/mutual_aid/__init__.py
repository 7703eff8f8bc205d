"""Mutual aid between the cities: the registry, requests, commitments and their rules."""
