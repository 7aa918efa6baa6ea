"""Personal values sealed at rest: key-encryption keys outside the database, a data key per
instance, and the store seen through them (see docs/operations.md)."""
