"""The corridor agreement, matching, lanes and statistics."""
