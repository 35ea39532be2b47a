"""Rules: which events they take, which conditions hold, what they render."""
