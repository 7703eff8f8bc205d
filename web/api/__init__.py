"""The JSON API under /api/v1: its shared part, request parsing and the API document.

Each capability serves its own operations from `web/<capability>/api.py`.
"""
