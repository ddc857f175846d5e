"""Musical scores for singing synthesis: note types and their validation."""
