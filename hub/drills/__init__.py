"""Joint drills (联合演练): plan, play, measure and evaluate drills between the member cities."""
