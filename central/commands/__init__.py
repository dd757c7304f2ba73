"""Commands to boxes (rebirth, sign override, close/open a bay) and their replies."""
