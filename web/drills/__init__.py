"""Joint drills in the UI: the list, planning with an MSEL, control of play, the AAR figures."""
