"""Action items (督办事项): one owner city, a due date, evidence to close; shared by meetings and drills."""
