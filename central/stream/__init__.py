"""The live stream: change notices after each ingest commit, as Server-Sent Events."""
