"""Messages central refused, kept with their reason."""
