"""Packaged code lists (with their attribution) that the product needs at run time."""
