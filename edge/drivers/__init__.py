"""edge.drivers: I/O around the codecs (serial lines, sign buses). One owner per resource."""
