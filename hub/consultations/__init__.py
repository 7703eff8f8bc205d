"""Joint consultations (联席会商) and the regular joint conference (联席会议)."""
