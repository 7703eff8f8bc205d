"""Mutual aid in the UI and the API: the registry, requests, offers and commitments."""
