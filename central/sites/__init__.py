"""The site in the store: loading the site file, serving it, and the disagreements
between what boxes publish and what the file says."""
