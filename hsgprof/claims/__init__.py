"""The seed's claims as data (what the seed says), kept apart from every measurement."""
