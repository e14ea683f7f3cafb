"""The contenders: wrapupd as shipped, and what users would do instead."""
