"""The rules file: YAML with positions, typed models, validation."""
