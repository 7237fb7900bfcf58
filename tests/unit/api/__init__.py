"""Unit tests of the API\x27s pure parts."""
