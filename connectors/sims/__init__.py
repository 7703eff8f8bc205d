"""Simulated peers for the demo and the tests: partner-city platforms and vehicles.

They speak the same contracts over real sockets; nothing in production imports them.
"""
