"""The county overview: each town's figures on one page (county staff only)."""
