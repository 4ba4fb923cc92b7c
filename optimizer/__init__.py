"""Allocation optimizer: Problem -> Solution. Imports solver engines lazily."""
